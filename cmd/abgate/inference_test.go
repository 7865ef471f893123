package main

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"testing"
)

// TestInferenceCommands checks that `abgate inference` (the inference
// server alone) and `abgate serve` (which mounts it) both serve the demo
// models over V2, give the same answer, and exit cleanly on SIGTERM.
func TestInferenceCommands(t *testing.T) {
	const body = `{"id": "r1", "inputs": [{"name": "features", "shape": [2, 4], "datatype": "FP32", "data": [35, 52000, 14, 3, 61, 18000, 2, 0]}]}`
	type output struct {
		Name     string    `json:"name"`
		Datatype string    `json:"datatype"`
		Shape    []int64   `json:"shape"`
		Data     []float64 `json:"data"`
	}
	infer := func(t *testing.T, addr string) map[string]output {
		t.Helper()
		resp, err := http.Post("http://"+addr+"/v2/models/classifier-v1/infer", "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("infer: status %d: %s", resp.StatusCode, raw)
		}
		var got struct {
			ModelName string   `json:"model_name"`
			ID        string   `json:"id"`
			Outputs   []output `json:"outputs"`
		}
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
		if got.ModelName != "classifier-v1" || got.ID != "r1" {
			t.Errorf("model_name %q, id %q; want classifier-v1, r1", got.ModelName, got.ID)
		}
		byName := map[string]output{}
		for _, o := range got.Outputs {
			byName[o.Name] = o
		}
		probs, labels := byName["probabilities"], byName["label"]
		if len(probs.Data) != 4 || len(labels.Data) != 2 {
			t.Fatalf("outputs %s; want 2x2 probabilities and 2 labels", raw)
		}
		for row := range 2 {
			p0, p1 := probs.Data[2*row], probs.Data[2*row+1]
			if math.Abs(p0+p1-1) > 1e-5 {
				t.Errorf("row %d: probabilities %v + %v do not sum to 1", row, p0, p1)
			}
			want := 0.0
			if p1 > p0 {
				want = 1
			}
			if labels.Data[row] != want {
				t.Errorf("row %d: label %v is not the argmax of %v, %v", row, labels.Data[row], p0, p1)
			}
		}
		return byName
	}

	alone := startCommand(t, "inference", "/v2/health/ready")
	fromAlone := infer(t, alone.addr)
	alone.stop(t)

	all := startServer(t)
	fromServe := infer(t, all.addr)
	all.stop(t)

	for name, o := range fromAlone {
		if got := fromServe[name]; len(got.Data) != len(o.Data) {
			t.Fatalf("output %s: serve gave %v, inference gave %v", name, got.Data, o.Data)
		}
		for i := range o.Data {
			if fromServe[name].Data[i] != o.Data[i] {
				t.Errorf("output %s[%d]: serve %v, inference %v", name, i, fromServe[name].Data[i], o.Data[i])
			}
		}
	}
}
