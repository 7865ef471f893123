package abgate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// HTTPStatus returns the HTTP status for err: the status of its code, 413
// for a body over the configured limit, 200 for nil.
func HTTPStatus(err error) int {
	var tooLarge *http.MaxBytesError
	if err == nil {
		return http.StatusOK
	} else if errors.As(err, &tooLarge) {
		return http.StatusRequestEntityTooLarge
	}
	switch ErrorCode(err) {
	case EINVALID:
		if e := (*Error)(nil); errors.As(err, &e) && e.tooLarge {
			return http.StatusRequestEntityTooLarge
		}
		return http.StatusBadRequest
	case ENOTFOUND:
		return http.StatusNotFound
	case ECONFLICT:
		return http.StatusConflict
	case EUNAUTHORIZED:
		return http.StatusUnauthorized
	case EFORBIDDEN:
		return http.StatusForbidden
	case EUNAVAILABLE:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// ErrorBody is the JSON body of every error answer:
// {"error": {"code": "...", "message": "...", "field": "..."}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inner object of ErrorBody.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// NewErrorBody returns the body that answers err. Internal errors carry a
// generic message: their cause is for the log, not the client.
func NewErrorBody(err error) ErrorBody {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		err = bodyTooLarge(tooLarge.Limit)
	}
	return ErrorBody{Error: ErrorDetail{Code: ErrorCode(err), Message: ErrorMessage(err), Field: ErrorField(err)}}
}

// WriteHTTPError writes err as a JSON error answer with its status.
func WriteHTTPError(w http.ResponseWriter, err error) {
	status := HTTPStatus(err)
	body, _ := json.Marshal(NewErrorBody(err))
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func bodyTooLarge(limit int64) *Error {
	return &Error{Code: EINVALID, Message: fmt.Sprintf("request body is larger than the limit of %d bytes", limit), tooLarge: true}
}

// DecodeJSON decodes exactly one JSON value from r into v. Unknown object
// fields are rejected with their name in Field; malformed JSON, a wrong
// type and trailing data are EINVALID errors with a message saying where;
// a body over an http.MaxBytesReader limit is an EINVALID error that
// HTTPStatus maps to 413.
func DecodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return bodyTooLarge(tooLarge.Limit)
		}
		return Errorf(EINVALID, "request body holds more than one JSON value")
	}
	return nil
}

func jsonError(err error) error {
	var (
		syntax    *json.SyntaxError
		typ       *json.UnmarshalTypeError
		tooLarge  *http.MaxBytesError
		abgateErr *Error
	)
	switch {
	case errors.As(err, &tooLarge):
		return bodyTooLarge(tooLarge.Limit)
	case errors.As(err, &abgateErr):
		return err
	case errors.Is(err, io.EOF):
		return Errorf(EINVALID, "request body is empty; a JSON object is expected")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Errorf(EINVALID, "malformed JSON: unexpected end of input")
	case errors.As(err, &syntax):
		return Errorf(EINVALID, "malformed JSON at byte %d: %s", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: "))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return Errorf(EINVALID, "request body must be %s, not %s", describeType(typ.Type.Kind().String()), typ.Value)
		}
		return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf("field %q must be %s, not %s", field, describeType(typ.Type.Kind().String()), typ.Value)}
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return &Error{Code: EINVALID, Field: name, Message: fmt.Sprintf("unknown field %q", name)}
	}
	return Errorf(EINVALID, "invalid JSON: %s", strings.TrimPrefix(msg, "json: "))
}

func describeType(kind string) string {
	switch kind {
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "float32", "float64", "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "a number"
	case "bool":
		return "a boolean"
	case "string":
		return "a string"
	}
	return "a " + kind
}
