package abgate

import "context"

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
	return context.WithValue(ctx, requestIDKey, id)
}

// RequestIDFromContext returns the request id stored in ctx, or "".
func RequestIDFromContext(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}
