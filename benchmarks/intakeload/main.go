// Command intakeload sends signed GitHub webhook deliveries to a loopback URL and
// prints one JSON object with the answers' latencies: the load generator of benchmark 1.
//
// It does what benchmarks/loadgen.py does, in less CPU per request, so that on a
// 2-core machine the load generator takes less of the time the servers under test
// are measured in. Every request is signed ahead of time (the signature covers the
// body, which never changes; only the X-GitHub-Delivery id does).
//
// With -rate it is open-loop: request i is due at start + i/rate whatever happened
// to the earlier ones, and its latency counts from when it was due (no coordinated
// omission). Without -rate, -connections clients send back to back (closed loop).
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const requestTimeout = 30 * time.Second

type options struct {
	url, payload, secret string
	seconds, rate        float64
	warmup               float64
	connections          int
	latencies            bool
}

// tally holds what one run saw: the latencies of 2xx answers and a count per outcome.
type tally struct {
	mu         sync.Mutex
	latencies  []float64 // seconds
	statuses   map[string]int
	lastAnswer time.Time
}

func newTally() *tally { return &tally{statuses: map[string]int{}} }

func (t *tally) record(outcome string, latency time.Duration, ok bool) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.statuses[outcome]++
	if ok {
		t.latencies = append(t.latencies, latency.Seconds())
	}
	t.lastAnswer = now
}

// deliveries builds the requests: one body and signature, a new delivery id each.
type deliveries struct {
	url       string
	body      []byte
	signature string
	run       string
	count     atomic.Int64
	client    *http.Client
}

func newDeliveries(o options) (*deliveries, error) {
	target, err := url.Parse(o.url)
	if err != nil {
		return nil, err
	}
	if host := target.Hostname(); host != "127.0.0.1" && host != "localhost" && host != "::1" {
		return nil, fmt.Errorf("loopback only: %s", o.url)
	}
	body, err := os.ReadFile(o.payload)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, []byte(o.secret))
	mac.Write(body)
	run := make([]byte, 6)
	if _, err := rand.Read(run); err != nil {
		return nil, err
	}
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: requestTimeout}).DialContext,
		MaxConnsPerHost:     o.connections,
		MaxIdleConnsPerHost: o.connections,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &deliveries{
		url:       o.url,
		body:      body,
		signature: "sha256=" + hex.EncodeToString(mac.Sum(nil)),
		run:       hex.EncodeToString(run),
		client:    &http.Client{Transport: transport, Timeout: requestTimeout},
	}, nil
}

func (d *deliveries) send(due time.Time, t *tally) {
	n := d.count.Add(1)
	request, _ := http.NewRequestWithContext(
		context.Background(), http.MethodPost, d.url, bytes.NewReader(d.body))
	request.Header = http.Header{
		"Content-Type":        {"application/json"},
		"User-Agent":          {"GitHub-Hookshot/benchmark"},
		"X-Github-Event":      {"pull_request"},
		"X-Hub-Signature-256": {d.signature},
		"X-Github-Delivery":   {d.run + "-" + strconv.FormatInt(n, 10)},
	}
	request.ContentLength = int64(len(d.body))
	response, err := d.client.Do(request)
	if err != nil {
		t.record(failure(err), 0, false)
		return
	}
	_, err = io.Copy(io.Discard, response.Body)
	response.Body.Close()
	if err != nil {
		t.record(failure(err), 0, false)
		return
	}
	ok := response.StatusCode >= 200 && response.StatusCode < 300
	t.record(strconv.Itoa(response.StatusCode), time.Since(due), ok)
}

func failure(err error) string {
	var timeout interface{ Timeout() bool }
	if errors.As(err, &timeout) && timeout.Timeout() {
		return "TimeoutError"
	}
	return "ClientError"
}

// openLoop sends at rate for warmup+seconds; what is due in the warm-up is not counted.
func openLoop(d *deliveries, o options) (*tally, time.Time) {
	counted, unseen := newTally(), newTally()
	first := time.Now()
	start := first.Add(seconds(o.warmup))
	total := int(o.rate * (o.warmup + o.seconds))
	var wg sync.WaitGroup
	for i := 0; i < total; i++ {
		due := first.Add(seconds(float64(i) / o.rate))
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		into := unseen
		if !due.Before(start) {
			into = counted
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.send(due, into)
		}()
	}
	wg.Wait()
	return counted, start
}

func closedLoop(d *deliveries, o options) (*tally, time.Time) {
	t := newTally()
	start := time.Now()
	end := start.Add(seconds(o.seconds))
	var wg sync.WaitGroup
	for c := 0; c < o.connections; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				d.send(time.Now(), t)
			}
		}()
	}
	wg.Wait()
	return t, start
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// summary has the keys and rounding of benchmarks/loadgen.py's.
func summary(t *tally, start time.Time, mode string, withLatencies bool) map[string]any {
	ms := make([]float64, len(t.latencies))
	for i, s := range t.latencies {
		ms[i] = s * 1000
	}
	sort.Float64s(ms)
	elapsed := 0.0
	if !t.lastAnswer.IsZero() {
		elapsed = t.lastAnswer.Sub(start).Seconds()
	}
	out := map[string]any{
		"mode": mode, "answered_2xx": len(ms), "statuses": t.statuses,
		"seconds": round(elapsed, 3), "per_second": 0.0,
		"p50_ms": pct(ms, 50), "p90_ms": pct(ms, 90), "p99_ms": pct(ms, 99),
		"max_ms": nil, "mean_ms": nil,
	}
	if elapsed > 0 {
		out["per_second"] = round(float64(len(ms))/elapsed, 1)
	}
	if len(ms) > 0 {
		sum := 0.0
		for _, x := range ms {
			sum += x
		}
		out["max_ms"] = round(ms[len(ms)-1], 2)
		out["mean_ms"] = round(sum/float64(len(ms)), 2)
	}
	if withLatencies {
		rounded := make([]float64, len(ms))
		for i, x := range ms {
			rounded[i] = round(x, 3)
		}
		out["latencies_ms"] = rounded
	}
	return out
}

func pct(ms []float64, p float64) any {
	if len(ms) == 0 {
		return nil
	}
	i := int(p / 100 * float64(len(ms)))
	if i > len(ms)-1 {
		i = len(ms) - 1
	}
	return round(ms[i], 2)
}

func round(x float64, places int) float64 {
	scale := math.Pow(10, float64(places))
	return math.Round(x*scale) / scale
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "", "the webhook URL (loopback only)")
	flag.StringVar(&o.payload, "payload", "", "the JSON body to send")
	flag.StringVar(&o.secret, "secret", "", "the webhook secret that signs it")
	flag.Float64Var(&o.seconds, "seconds", 10, "seconds counted")
	flag.Float64Var(&o.rate, "rate", 0, "deliveries per second (open loop); 0: closed loop")
	flag.IntVar(&o.connections, "connections", 64, "connections at most")
	flag.Float64Var(&o.warmup, "warmup", 0, "open loop: seconds sent first, not counted")
	flag.BoolVar(&o.latencies, "latencies", false, "print every 2xx latency too")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "intakeload:", err)
		os.Exit(2)
	}
}

func run(o options) error {
	if o.url == "" || o.payload == "" || o.secret == "" {
		return errors.New("-url, -payload and -secret are required")
	}
	total := o.seconds + o.warmup
	if total > 120 || o.rate*total > 200_000 || o.connections < 1 {
		return errors.New("bounded: at most 120 s and 200,000 deliveries per run, 1 connection or more")
	}
	d, err := newDeliveries(o)
	if err != nil {
		return err
	}
	var t *tally
	var start time.Time
	mode := fmt.Sprintf("closed loop, %d connections", o.connections)
	if o.rate > 0 {
		t, start = openLoop(d, o)
		mode = "open loop, " + strconv.FormatFloat(o.rate, 'g', -1, 64) + "/s"
	} else {
		t, start = closedLoop(d, o)
	}
	return json.NewEncoder(os.Stdout).Encode(summary(t, start, mode, o.latencies))
}
