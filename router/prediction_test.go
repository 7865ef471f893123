package router

import (
	"testing"
)

// extractV2Cases are V2 answers on which the scanner and encoding/json
// must agree, most of them on the edges where the scanner gives up.
var extractV2Cases = []string{
	`{"outputs":[{"name":"probabilities","shape":[2,3],"data":[0.1,0.7,0.2,0.5,0.4,0.1]},{"name":"label","shape":[2],"data":[1,0]}]}`,
	`{"outputs":[{"name":"probabilities","shape":[1,3],"data":[0.1,0.2,0.7]}]}`,
	`{"outputs":[{"name":"label","shape":[1],"data":["cat"]}]}`,
	`{"outputs":[{"name":"logits","data":[1]}]}`,
	`{"model_name":"up-a","model_version":"1","outputs":[{"name":"label","shape":[1],"datatype":"BYTES","data":["up-a-yes"]},{"name":"probabilities","shape":[1,2],"datatype":"FP32","data":[0.25,0.75]}]}`,
	` {"outputs" : [ { "data" : [ 0.5 , 0.25 , 0.75 ] , "shape" : [ 1 , 2 ] , "name" : "probabilities" } ] } `,
	`{"outputs":[{"name":"label","data":[true]},{"name":"probabilities","data":[]}]}`,
	`{"outputs":[{"name":"label","data":[false,{"a":[1,2,{"b":null}]}]}]}`,
	`{"outputs":[{"name":"label","data":[-1.5e3]}]}`,
	`{"outputs":[{"name":"label","data":[1e400]}]}`,
	`{"outputs":[{"name":"label","data":["a",1e400]}]}`,
	`{"outputs":[{"name":"label","data":[null]}]}`,
	`{"outputs":[{"name":"label","data":"x"}]}`,
	`{"outputs":[{"name":"label","data":null}]}`,
	`{"outputs":[{"name":"label"}]}`,
	`{"outputs":[{"name":"label","data":["caf\u00e9"]}]}`,
	`{"outputs":[{"name":"label","data":["café"]}]}`,
	"{\"outputs\":[{\"name\":\"label\",\"data\":[\"\xff\"]}]}",
	`{"outputs":[{"name":"label","data":["a\nb"]}]}`,
	"{\"outputs\":[{\"name\":\"label\",\"data\":[\"a\nb\"]}]}",
	`{"outputs":[{"name":"probabilities","data":[0.1,null,0.3]}]}`,
	`{"outputs":[{"name":"probabilities","data":[0.1,"0.9"]}]}`,
	`{"outputs":[{"name":"probabilities","data":null}]}`,
	`{"outputs":[{"name":"probabilities","shape":[1.0,2],"data":[0.1,0.9]}]}`,
	`{"outputs":[{"name":"probabilities","shape":[0],"data":[0.1,0.9]}]}`,
	`{"outputs":[{"name":"probabilities","shape":[-1],"data":[0.1,0.9]}]}`,
	`{"outputs":[{"name":"probabilities","shape":[5],"data":[0.1,0.9]}]}`,
	`{"outputs":[{"name":"probabilities","shape":null,"data":[0.1,0.9]}]}`,
	`{"outputs":[{"name":"probabilities","data":[0.1,0.9],"data":[0.9,0.1]}]}`,
	`{"Outputs":[{"name":"label","data":["x"]}]}`,
	`{"outputs":[{"Name":"label","data":["x"]}]}`,
	`{"outputſ":[{"name":"label","data":["x"]}]}`,
	`{"out\u0070uts":[{"name":"label","data":["x"]}]}`,
	`{"outputs":[{"name":"lab\u0065l","data":["x"]}]}`,
	`{"outputs":[{"name":"label","data":["x"]}],"outputs":[{"name":"label","data":["y"]}]}`,
	`{"outputs":[{"name":"label","data":["x"]}],"outputs":[{"data":["y"]}]}`,
	`{"outputs":[null,{"name":"label","data":["x"]}]}`,
	`{"outputs":null}`,
	`{"outputs":{}}`,
	`{"outputs":[{"name":7,"data":["x"]}]}`,
	`{"outputs":[]}`,
	`{}`,
	`{"outputs":[{"name":"label","data":["x"]}]}x`,
	"{\"outputs\":[{\"name\":\"label\",\"data\":[\"x\"]}]}\x00",
	`{"outputs":[{"name":"label","data":["x"]}]`,
	`{"outputs":[{"name":"label","data":["x"],}]}`,
	`{"outputs":[{"name":"label","data":[01]}]}`,
	`{"outputs":[{"name":"label","data":[1.]}]}`,
	`{"outputs":[{"name":"label","data":[-]}]}`,
	`{"outputs":[{"name":"label","data":[tru]}]}`,
	`{"a":{"b":[1,2,{"c":"d\"e"}]},"outputs":[{"name":"label","data":["x"]}]}`,
	`{"a":"\x"}`,
	`{"a":"\u12"}`,
}

func TestExtractV2FastAgrees(t *testing.T) {
	for _, body := range extractV2Cases {
		t.Run(body, func(t *testing.T) { extractV2Agree(t, []byte(body)) })
	}
}

// TestExtractV2FastReads checks that the scanner itself reads the usual
// answers, rather than leaving them to encoding/json.
func TestExtractV2FastReads(t *testing.T) {
	for _, tc := range []struct {
		body, label string
		conf        float32
	}{
		{extractV2Cases[0], "1", 0.7},
		{extractV2Cases[4], "up-a-yes", 0.75},
		{extractV2Cases[5], "0", 0.5},
		{extractV2Cases[8], "-1500", 0},
	} {
		label, conf, ok := extractV2Fast([]byte(tc.body))
		if !ok || label == nil {
			t.Errorf("%s: ok %v label %v, want read", tc.body, ok, label)
			continue
		}
		if *label != tc.label {
			t.Errorf("%s: label %q, want %q", tc.body, *label, tc.label)
		}
		if tc.conf != 0 && (conf == nil || *conf != tc.conf) {
			t.Errorf("%s: confidence %v, want %v", tc.body, conf, tc.conf)
		}
	}
}

func FuzzExtractV2(f *testing.F) {
	for _, body := range extractV2Cases {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) { extractV2Agree(t, body) })
}

// extractV2Agree fails t when the scanner reads body and its result
// differs from encoding/json's.
func extractV2Agree(t *testing.T, body []byte) {
	t.Helper()
	label, conf, ok := extractV2Fast(body)
	if !ok {
		return
	}
	wantLabel, wantConf := extractV2(body)
	if (label == nil) != (wantLabel == nil) || (label != nil && *label != *wantLabel) {
		t.Errorf("label %v, encoding/json %v", deref(label), deref(wantLabel))
	}
	if (conf == nil) != (wantConf == nil) || (conf != nil && *conf != *wantConf) {
		t.Errorf("confidence %v, encoding/json %v", deref(conf), deref(wantConf))
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
