package abgate

import (
	"context"
	"fmt"
)

type ctxKey int

const (
	actorKey ctxKey = iota
	requestIDKey
)

// Actor is who makes a request: the name and role of the API key that
// authenticated it. The zero Actor is anonymous.
type Actor struct {
	Name string
	Role string
}

// NewContextWithActor returns a copy of ctx carrying actor.
func NewContextWithActor(ctx context.Context, actor Actor) context.Context {
	return context.WithValue(ctx, actorKey, actor)
}

// ActorFromContext returns the actor stored in ctx, or the zero Actor.
func ActorFromContext(ctx context.Context) Actor {
	a, _ := ctx.Value(actorKey).(Actor)
	return a
}

// NewContextWithRequestID returns a copy of ctx carrying a request id.
func NewContextWithRequestID(ctx context.Context, id string) context.Context {
	return &requestIDCtx{Context: ctx, id: id}
}

// requestIDCtx is context.WithValue(ctx, requestIDKey, id) in one
// allocation rather than two (the context and the id boxed into an
// interface): every request takes one.
type requestIDCtx struct {
	context.Context
	id string
}

func (c *requestIDCtx) Value(key any) any {
	if k, ok := key.(ctxKey); ok && k == requestIDKey {
		return c.id
	}
	return c.Context.Value(key)
}

func (c *requestIDCtx) String() string {
	return fmt.Sprintf("%v.WithValue(request id, %q)", c.Context, c.id)
}

// RequestIDFromContext returns the request id stored in ctx, or "".
func RequestIDFromContext(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}
