// Package abgate holds the vocabulary shared by every slice of abgate: the
// error type with its codes and the request-context helpers. It imports
// nothing from the rest of the project.
package abgate

import (
	"errors"
	"fmt"
)

// Error codes. Each maps to one HTTP status at the edge (see the HTTP
// mapping in experiments.WriteError).
const (
	EINVALID      = "invalid"      // the request is malformed or violates a rule: 400
	ENOTFOUND     = "not_found"    // the named thing does not exist: 404
	ECONFLICT     = "conflict"     // the request clashes with the current state: 409
	EUNAUTHORIZED = "unauthorized" // no or unknown credentials: 401
	EFORBIDDEN    = "forbidden"    // credentials lack the role: 403
	EUNAVAILABLE  = "unavailable"  // a dependency is down or overloaded: 503
	EINTERNAL     = "internal"     // a bug or an unexpected failure: 500
)

// Error is the one error type of abgate. Code is one of the E* constants;
// Message is safe to show to a user; Field, when set, names the input field
// at fault (for example "variants[1].weight").
type Error struct {
	Code    string
	Message string
	Field   string

	tooLarge bool // a request body over its limit: 413 rather than 400
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("abgate error: code=%s field=%s message=%s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("abgate error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldErrorf returns an EINVALID *Error that names the field at fault.
func FieldErrorf(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Message: fmt.Sprintf(format, args...), Field: field}
}

// WithField returns a copy of e that names field.
func (e *Error) WithField(field string) *Error {
	c := *e
	c.Field = field
	return &c
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return "" // before e, which errors.As makes escape: no allocation
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of the first *Error in err's
// chain, or "internal error" for any other non-nil error, so that causes of
// internal failures never reach users.
func ErrorMessage(err error) string {
	if err == nil {
		return "" // before e, which errors.As makes escape: no allocation
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// ErrorField returns the field named by the first *Error in err's chain, or "".
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
