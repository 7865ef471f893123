package inference

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"abgate"
	"abgate/inference/modelgen"
)

// histogram returns the sample count, the sum and the cumulative count of
// the bucket le=1 of the histogram name with the labels model and version.
func histogram(t testing.TB, reg *prometheus.Registry, name, model, version string) (count uint64, sum float64, le1 uint64) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			h := m.GetHistogram()
			if labels["model"] != model || labels["version"] != version || h == nil {
				continue
			}
			for _, b := range h.GetBucket() {
				if b.GetUpperBound() == 1 {
					le1 = b.GetCumulativeCount()
				}
			}
			return h.GetSampleCount(), h.GetSampleSum(), le1
		}
	}
	return 0, 0, 0
}

// holdRuns makes the runs of m wait until the returned release is called;
// started receives the number of each run as it starts. Runs that start
// after release go through.
func holdRuns(t testing.TB, m *Model) (started <-chan int, release func()) {
	t.Helper()
	gate := make(chan struct{})
	ch := make(chan int, 1024)
	var n atomic.Int64
	m.beforeRun = func(ctx context.Context) {
		ch <- int(n.Add(1))
		select {
		case <-gate:
		case <-ctx.Done():
		}
	}
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	return ch, release
}

// waitDepth waits until m's batcher holds n queued requests.
func waitDepth(t testing.TB, m *Model, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for m.batcher.QueueDepth() != n {
		if time.Now().After(deadline) {
			t.Fatalf("queue depth %d, want %d", m.batcher.QueueDepth(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestInferBatching sends concurrent requests of one and two rows to the
// logistic regression, which has a dynamic batch axis, while its one
// session is held, so that they queue and run in batches: each answer
// equals the regression done by hand for its own rows, and the batch-size
// histogram shows batches of more than one row.
func TestInferBatching(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	logreg, lw := modelgen.LogReg()
	writeTestModel(t, dir, "classifier", "1", logreg, "instances: 1\nmax_batch_size: 16\nmax_queue_delay_us: 1000\n")
	ts := newTestServer(t, dir)
	m, err := ts.repo.Get("classifier", "")
	if err != nil {
		t.Fatal(err)
	}
	if !m.batchable || ts.Info(m).MaxBatchSize != 16 {
		t.Fatalf("classifier batchable %v, info max_batch_size %d; want true, 16", m.batchable, ts.Info(m).MaxBatchSize)
	}
	started, release := holdRuns(t, m)

	const n = 24
	all := tabularRows(2 * n)
	type answer struct {
		features []float32
		resp     *InferResponse
		err      error
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	send := func(i int) {
		rows := 1 + i%2
		features := all[8*i : 8*i+4*rows]
		data, _ := json.Marshal(features)
		body := fmt.Sprintf(`{"id":"r%d","inputs":[{"name":"features","shape":[%d,4],"datatype":"FP32","data":%s}]}`, i, rows, data)
		resp, b := ts.post(t, "/v2/models/classifier/infer", nil, []byte(body))
		a := answer{features: features}
		if resp.StatusCode != http.StatusOK {
			a.err = fmt.Errorf("request %d: %d %s", i, resp.StatusCode, b)
		} else {
			a.resp, a.err = DecodeInferResponse(b)
		}
		answers[i] = a
	}
	wg.Go(func() { send(0) })
	<-started // request 0 runs and holds the session
	for i := 1; i < n; i++ {
		wg.Go(func() { send(i) })
	}
	waitDepth(t, m, n-1)
	release()
	wg.Wait()

	for i, a := range answers {
		if a.err != nil {
			t.Error(a.err)
			continue
		}
		probs, labels := tabularByHand(lw, a.features)
		rows := int64(len(labels))
		if a.resp.ID != fmt.Sprintf("r%d", i) || len(a.resp.Outputs) != 2 {
			t.Fatalf("request %d: response %+v", i, a.resp)
		}
		p, l := a.resp.Outputs[0], a.resp.Outputs[1]
		if !slices.Equal(p.Shape, []int64{rows, 2}) || !closeTo(p.Data.([]float32), probs, 1e-5) {
			t.Errorf("request %d: probabilities %v %v, want [%d 2] %v", i, p.Shape, p.Data, rows, probs)
		}
		if !slices.Equal(l.Shape, []int64{rows}) || !slices.Equal(l.Data.([]int64), labels) {
			t.Errorf("request %d: labels %v %v, want %v", i, l.Shape, l.Data, labels)
		}
	}
	wantRows := 0
	for i := range n {
		wantRows += 1 + i%2
	}
	count, sum, le1 := histogram(t, ts.reg, "abgate_inference_batch_size", "classifier", "1")
	if sum != float64(wantRows) || count >= n || count-le1 == 0 {
		t.Errorf("batch sizes: %d runs of %v rows, %d of one row; want fewer than %d runs of %d rows, some of more than one", count, sum, le1, n, wantRows)
	}
	if got := counterValue(t, ts.reg, "abgate_inference_queue_seconds", map[string]string{"model": "classifier"}); got != n {
		t.Errorf("queue latency observed %v times, want %d", got, n)
	}
	if got := counterValue(t, ts.reg, "abgate_inference_requests_total", map[string]string{"model": "classifier"}); got != n {
		t.Errorf("requests counted %v, want %d", got, n)
	}
	if got := counterValue(t, ts.reg, "abgate_inference_queue_depth", map[string]string{"model": "classifier"}); got != 0 {
		t.Errorf("queue depth gauge %v after the runs, want 0", got)
	}
}

// fixedBatchModel is y = x + 1 on x FLOAT [2, 3]: a fixed first axis.
func fixedBatchModel(t testing.TB) []byte {
	t.Helper()
	g := modelgen.NewGraph("fixed_batch")
	g.Input("x", modelgen.Float, 2, 3)
	g.Initializer("one", modelgen.Float, nil, []float32{1})
	g.Node("Add", []string{"x", "one"}, []string{"y"})
	g.Output("y", modelgen.Float, 2, 3)
	b, err := modelgen.Model(g).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestInferFixedFirstAxisNotBatched: a model whose input has a fixed first
// axis runs every request alone, even when requests queue up.
func TestInferFixedFirstAxisNotBatched(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	writeTestModel(t, dir, "fixed", "1", fixedBatchModel(t), "instances: 1\nmax_batch_size: 8\nmax_queue_delay_us: 1000\n")
	ts := newTestServer(t, dir)
	m, err := ts.repo.Get("fixed", "")
	if err != nil {
		t.Fatal(err)
	}
	if m.batchable || ts.Info(m).MaxBatchSize != 1 {
		t.Fatalf("fixed batchable %v, info max_batch_size %d; want false, 1", m.batchable, ts.Info(m).MaxBatchSize)
	}
	started, release := holdRuns(t, m)
	const n = 6
	errs := make(chan error, n)
	send := func(i int) {
		x := make([]float32, 6)
		want := make([]float64, 6)
		for k := range x {
			x[k] = float32(10*i + k)
			want[k] = float64(x[k] + 1)
		}
		data, _ := json.Marshal(x)
		resp, b := ts.post(t, "/v2/models/fixed/infer", nil, []byte(`{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":`+string(data)+`}]}`))
		if resp.StatusCode != http.StatusOK {
			errs <- fmt.Errorf("request %d: %d %s", i, resp.StatusCode, b)
			return
		}
		r, err := DecodeInferResponse(b)
		if err != nil || !closeTo(r.Outputs[0].Data.([]float32), want, 0) {
			errs <- fmt.Errorf("request %d: %s, want %v", i, b, want)
			return
		}
		errs <- nil
	}
	go send(0)
	<-started
	for i := 1; i < n; i++ {
		go send(i)
	}
	waitDepth(t, m, n-1)
	release()
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if count, sum, _ := histogram(t, ts.reg, "abgate_inference_batch_size", "fixed", "1"); count != n || sum != 2*n {
		t.Errorf("batch sizes: %d runs of %v rows; want %d runs of 2 rows each", count, sum, n)
	}
}

// TestInferQueueFull: with one session held and a queue of one, a third
// request is refused at once with 503 and Retry-After; the others finish.
func TestInferQueueFull(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	writeTestModel(t, dir, "scalar", "1", modelgen.Scalar(), "instances: 1\nmax_queue_size: 1\n")
	ts := newTestServer(t, dir)
	m, err := ts.repo.Get("scalar", "")
	if err != nil {
		t.Fatal(err)
	}
	started, release := holdRuns(t, m)
	body := []byte(`{"inputs":[{"name":"x","shape":[],"datatype":"FP32","data":[1.5]}]}`)
	statuses := make(chan int, 2)
	post := func() {
		resp, _ := ts.post(t, "/v2/models/scalar/infer", nil, body)
		statuses <- resp.StatusCode
	}
	go post()
	<-started
	go post()
	waitDepth(t, m, 1)

	resp, b := ts.post(t, "/v2/models/scalar/infer", nil, body)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third request: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if e := errorBody(t, b); e.Code != abgate.EUNAVAILABLE || !strings.Contains(e.Message, "queue is full") {
		t.Errorf("third request: %+v, want unavailable, queue is full", e)
	}
	release()
	for range 2 {
		if s := <-statuses; s != http.StatusOK {
			t.Errorf("queued request: %d, want 200", s)
		}
	}
	if got := counterValue(t, ts.reg, "abgate_inference_failures_total", map[string]string{"model": "scalar", "code": abgate.EUNAVAILABLE}); got != 1 {
		t.Errorf("unavailable failures %v, want 1", got)
	}
}

// TestInferCancelledLeavesQueue: a client that gives up while its request
// waits in the queue takes the request out; it never runs.
func TestInferCancelledLeavesQueue(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	writeTestModel(t, dir, "scalar", "1", modelgen.Scalar(), "instances: 1\n")
	ts := newTestServer(t, dir)
	m, err := ts.repo.Get("scalar", "")
	if err != nil {
		t.Fatal(err)
	}
	started, release := holdRuns(t, m)
	body := `{"inputs":[{"name":"x","shape":[],"datatype":"FP32","data":[2]}]}`
	first := make(chan int, 1)
	go func() {
		resp, _ := ts.post(t, "/v2/models/scalar/infer", nil, []byte(body))
		first <- resp.StatusCode
	}()
	<-started

	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "POST", ts.url+"/v2/models/scalar/infer", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	gaveUp := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		gaveUp <- err
	}()
	waitDepth(t, m, 1)
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Errorf("client error %v, want context.Canceled", err)
	}
	waitDepth(t, m, 0) // the server saw the disconnect

	release()
	if s := <-first; s != http.StatusOK {
		t.Errorf("first request: %d, want 200", s)
	}
	select {
	case n := <-started:
		t.Errorf("run %d started; the cancelled request must not run", n)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestBatchFailureRunsAlone: when a batched run fails on one request's
// data, the requests run again alone, and only the bad one fails.
func TestBatchFailureRunsAlone(t *testing.T) {
	var mu sync.Mutex
	var runs []int
	run := func(ctx context.Context, inputs []Tensor, outputs []string) ([]Tensor, error) {
		x := inputs[0].Data.([]float32)
		mu.Lock()
		runs = append(runs, len(x))
		mu.Unlock()
		if slices.Contains(x, -1) {
			return nil, abgate.Errorf(abgate.EINVALID, "negative")
		}
		return []Tensor{{Name: "y", Datatype: DTFP32, Shape: inputs[0].Shape, Data: slices.Clone(x)}}, nil
	}
	b := NewBatcher(run, BatcherOptions{MaxBatchSize: 3, MaxQueueDelay: time.Second})
	defer b.Close()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, v := range []float32{1, -1, 2} {
		wg.Go(func() {
			_, errs[i] = b.Submit(context.Background(), []Tensor{{Name: "x", Datatype: DTFP32, Shape: []int64{1}, Data: []float32{v}}}, nil)
		})
	}
	wg.Wait()
	if errs[0] != nil || errs[2] != nil || abgate.ErrorCode(errs[1]) != abgate.EINVALID {
		t.Errorf("errors %v, want only the second, invalid", errs)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(runs) != 4 || runs[0] != 3 {
		t.Errorf("runs of %v rows, want a batch of 3 then three runs alone", runs)
	}
}

// TestUnloadDrainsQueue: unloading a model first runs the requests queued
// in its batcher, then closes its sessions; later requests are 404.
func TestUnloadDrainsQueue(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	writeTestModel(t, dir, "scalar", "1", modelgen.Scalar(), "instances: 1\n")
	ts := newTestServer(t, dir)
	m, err := ts.repo.Get("scalar", "")
	if err != nil {
		t.Fatal(err)
	}
	started, release := holdRuns(t, m)
	body := []byte(`{"inputs":[{"name":"x","shape":[],"datatype":"FP32","data":[4]}]}`)
	answers := make(chan string, 2)
	post := func() {
		resp, b := ts.post(t, "/v2/models/scalar/infer", nil, body)
		answers <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}
	go post()
	<-started
	go post()
	waitDepth(t, m, 1)
	unloaded := make(chan error, 1)
	go func() { unloaded <- ts.repo.Unload("scalar") }()
	// The model stops taking requests at once, while its queue drains.
	deadline := time.Now().Add(5 * time.Second)
	for !m.isClosed() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if resp, b := ts.post(t, "/v2/models/scalar/infer", nil, body); resp.StatusCode != http.StatusNotFound {
		t.Errorf("request during unload: %d %s, want 404", resp.StatusCode, b)
	}
	release()
	if err := <-unloaded; err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if a := <-answers; !strings.HasPrefix(a, "200 ") || !strings.Contains(a, `"data":[8]`) {
			t.Errorf("queued request: %s, want 200 with 8", a)
		}
	}
	if _, err := m.Run(context.Background(), []Tensor{{Name: "x", Datatype: DTFP32, Shape: []int64{}, Data: []float32{1}}}, nil); abgate.ErrorCode(err) != abgate.EUNAVAILABLE {
		t.Errorf("run after unload: %v, want unavailable", err)
	}
}
