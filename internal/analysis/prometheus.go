package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Prometheus reads one Prometheus server through its HTTP API
// (/api/v1/query, /api/v1/format_query).
type Prometheus struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:9090.
	URL string
	// HTTP is the client; nil means one with a 10-second timeout.
	HTTP *http.Client
}

// defaultTimeout bounds one request when Prometheus.HTTP is nil: a
// measurement that cannot be had in time is inconclusive, not late.
const defaultTimeout = 10 * time.Second

// Why a value could not be had. Each is inconclusive, never a pass and
// never a failure: the release waits and says which.
var (
	// ErrUnreachable: no answer from Prometheus (connection refused, a
	// timeout, a 5xx).
	ErrUnreachable = errors.New("Prometheus unreachable")
	// ErrNoData: the query matched no series, or gave NaN (a ratio of zero
	// requests to zero requests).
	ErrNoData = errors.New("no data")
	// ErrNotOneNumber: the query gave several series, a range or a string.
	ErrNotOneNumber = errors.New("the query does not evaluate to one number")
	// ErrBadQuery: Prometheus refused the query (it does not parse, or
	// cannot be evaluated).
	ErrBadQuery = errors.New("Prometheus refused the query")
)

// apiResponse is the envelope of every Prometheus API answer.
type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

// queryData is the data of an instant query.
type queryData struct {
	ResultType string          `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

// sample is one series of a vector: its labels and [time, "value"].
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
}

// Value evaluates query at the given time and returns its one number.
// The error wraps ErrUnreachable, ErrNoData, ErrNotOneNumber or
// ErrBadQuery, with what Prometheus said.
func (p Prometheus) Value(ctx context.Context, query string, at time.Time) (float64, error) {
	params := url.Values{"query": {query}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	raw, err := p.call(ctx, "/api/v1/query", params)
	if err != nil {
		return 0, err
	}
	var data queryData
	if err := json.Unmarshal(raw, &data); err != nil {
		return 0, fmt.Errorf("%w: decoding the answer: %v", ErrUnreachable, err)
	}
	v, err := oneNumber(data)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(v) {
		return 0, fmt.Errorf("%w: the query gave NaN", ErrNoData)
	}
	return v, nil
}

// oneNumber is the value of a scalar, or of a vector of exactly one series.
func oneNumber(data queryData) (float64, error) {
	switch data.ResultType {
	case "scalar":
		var pair []any
		if err := json.Unmarshal(data.Result, &pair); err != nil {
			return 0, fmt.Errorf("%w: decoding a scalar: %v", ErrUnreachable, err)
		}
		return sampleValue(pair)
	case "vector":
		var series []sample
		if err := json.Unmarshal(data.Result, &series); err != nil {
			return 0, fmt.Errorf("%w: decoding a vector: %v", ErrUnreachable, err)
		}
		switch len(series) {
		case 0:
			return 0, fmt.Errorf("%w: the query matched no series", ErrNoData)
		case 1:
			return sampleValue(series[0].Value)
		default:
			return 0, fmt.Errorf("%w: it gave %d series (aggregate them, e.g. with sum(...))", ErrNotOneNumber, len(series))
		}
	default:
		return 0, fmt.Errorf("%w: it gave a %s (an instant query of a range selector or a string?)", ErrNotOneNumber, data.ResultType)
	}
}

// sampleValue parses Prometheus's [time, "value"] pair.
func sampleValue(pair []any) (float64, error) {
	if len(pair) != 2 {
		return 0, fmt.Errorf("%w: a sample of %d elements", ErrUnreachable, len(pair))
	}
	s, ok := pair[1].(string)
	if !ok {
		return 0, fmt.Errorf("%w: a sample value of type %T", ErrUnreachable, pair[1])
	}
	return strconv.ParseFloat(s, 64)
}

// CheckSyntax asks Prometheus to parse query (/api/v1/format_query). The
// error wraps ErrBadQuery when the query does not parse, ErrUnreachable
// when Prometheus could not be asked.
func (p Prometheus) CheckSyntax(ctx context.Context, query string) error {
	_, err := p.call(ctx, "/api/v1/format_query", url.Values{"query": {query}})
	return err
}

// call posts params to one API endpoint and returns the answer's data.
func (p Prometheus) call(ctx context.Context, path string, params url.Values) (json.RawMessage, error) {
	hc := p.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: defaultTimeout}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(p.URL, "/")+path, strings.NewReader(params.Encode()))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the answer: %v", ErrUnreachable, err)
	}
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%w: HTTP %d, not an API answer: %.200s", ErrUnreachable, resp.StatusCode, body)
	}
	if r.Status == "success" {
		return r.Data, nil
	}
	// 400 (bad_data) and 422 (execution) are the query's fault; anything
	// else (503 while starting, timeouts) is Prometheus's.
	if resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnprocessableEntity {
		return nil, fmt.Errorf("%w: %s", ErrBadQuery, r.Error)
	}
	return nil, fmt.Errorf("%w: HTTP %d: %s: %s", ErrUnreachable, resp.StatusCode, r.ErrorType, r.Error)
}
