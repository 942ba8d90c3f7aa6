package dev

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/cafe-io/cafe/internal/cli/table"
	"github.com/cafe-io/cafe/internal/loadgen"
)

type loadOptions struct {
	URL         string
	Host        string
	Headers     []string
	Rate        int
	Duration    time.Duration
	Timeout     time.Duration
	MaxInFlight int
	FailOnError bool

	streams genericiooptions.IOStreams
}

func newLoadCmd(streams genericiooptions.IOStreams) *cobra.Command {
	o := &loadOptions{streams: streams}
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Send HTTP requests at a fixed rate to a gateway on loopback and count failures per second",
		Long: `Send GET requests to --url at a fixed rate (an open model: request i leaves
at start + i/rate however slow the answers are) and print, for every second,
how many were sent, answered 2xx, answered otherwise, failed to connect,
timed out or were dropped (more than --max-in-flight outstanding), with the
versions (header X-Cafe-Version) of the 2xx answers. A final table sums the
run and lists the seconds that were not served (no 2xx, or any failure).

Only loopback is load-tested: the URL's host must be 127.0.0.0/8, ::1 or
localhost. Redirects are not followed. --duration 0 runs until Ctrl-C (at
most 1h).`,
		Example: `  # 200 requests/s for a minute through the local gateway, to the route of shop.example
  cafe dev load --url http://127.0.0.1:8080/ --host shop.example --rate 200 --duration 1m

  # until Ctrl-C, with a header; exit 1 if any request failed
  cafe dev load --url http://localhost:8080/pay --header X-Tenant=a --fail-on-error`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&o.URL, "url", "", "URL to GET; its host must be loopback (127.0.0.0/8, ::1, localhost)")
	cmd.Flags().StringVar(&o.Host, "host", "", "Host header to send instead of the URL's host (for Host-based routes)")
	cmd.Flags().StringArrayVar(&o.Headers, "header", nil, "extra request header as name=value (repeatable)")
	cmd.Flags().IntVar(&o.Rate, "rate", 100, fmt.Sprintf("requests per second (at most %d)", loadgen.MaxRate))
	cmd.Flags().DurationVar(&o.Duration, "duration", 0, fmt.Sprintf("how long to send requests; 0 = until Ctrl-C (at most %s)", loadgen.MaxDuration))
	cmd.Flags().DurationVar(&o.Timeout, "timeout", loadgen.DefaultTimeout, "timeout of each request, body included")
	cmd.Flags().IntVar(&o.MaxInFlight, "max-in-flight", loadgen.DefaultMaxInFlight, "requests outstanding at most; more are counted as dropped")
	cmd.Flags().BoolVar(&o.FailOnError, "fail-on-error", false, "exit with status 1 if any request failed")
	_ = cmd.MarkFlagRequired("url")
	return cmd
}

// config turns the flags into a loadgen.Config.
func (o *loadOptions) config() (loadgen.Config, error) {
	headers := http.Header{}
	for _, h := range o.Headers {
		name, value, ok := strings.Cut(h, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return loadgen.Config{}, fmt.Errorf("--header %q: want name=value", h)
		}
		if http.CanonicalHeaderKey(name) == "Host" {
			return loadgen.Config{}, fmt.Errorf("--header %q: set the Host header with --host", h)
		}
		headers.Add(name, value)
	}
	return loadgen.Config{
		URL:         o.URL,
		Host:        o.Host,
		Headers:     headers,
		Rate:        o.Rate,
		Duration:    o.Duration,
		Timeout:     o.Timeout,
		MaxInFlight: o.MaxInFlight,
	}, nil
}

func (o *loadOptions) run(parent context.Context) error {
	cfg, err := o.config()
	if err != nil {
		return err
	}
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()

	out := o.streams.Out
	headerDone := false // OnSecond is called from one goroutine
	cfg.OnSecond = func(s loadgen.Second) {
		if !headerDone {
			printSecondHeader(out)
			headerDone = true
		}
		printSecond(out, s)
	}
	report, runErr := loadgen.Run(ctx, cfg)
	if report == nil {
		return runErr
	}
	fmt.Fprintln(out)
	if err := printLoadSummary(out, report); err != nil {
		return err
	}
	if runErr != nil {
		return runErr
	}
	if o.FailOnError && report.Total.Failed() > 0 {
		return fmt.Errorf("%d of %d requests failed", report.Total.Failed(), report.Total.Sent+report.Total.Dropped)
	}
	return nil
}

const secondFormat = "%6v %6v %6v %8v %11v %9v %8v %9v  %v\n"

func printSecondHeader(out io.Writer) {
	fmt.Fprintf(out, secondFormat, "SECOND", "SENT", "OK", "NON-2XX", "CONN-ERRORS", "TIMEOUTS", "DROPPED", "P99", "VERSIONS")
}

// printSecond prints one line per second as the run goes; the columns are
// fixed-width since the lines stream (a tabwriter would hold them back).
func printSecond(out io.Writer, s loadgen.Second) {
	fmt.Fprintf(out, secondFormat, s.Index, s.Sent, s.OK, s.Non2xx, s.ConnErrors, s.Timeouts, s.Dropped,
		latencyCell(s.Latency, s.Latency.P99), loadgen.FormatCountMap(s.Versions))
}

func printLoadSummary(out io.Writer, r *loadgen.Report) error {
	t := r.Total
	w := table.NewWriter(out)
	fmt.Fprintf(w, "SECONDS\tSENT\tOK\tNON-2XX\tCONN-ERRORS\tTIMEOUTS\tDROPPED\tP50\tP90\tP99\tMAX\n")
	fmt.Fprintf(w, "%d\t%d\t%d\t%d\t%d\t%d\t%d\t%v\t%v\t%v\t%v\n", t.Seconds, t.Sent, t.OK, t.Non2xx, t.ConnErrors, t.Timeouts, t.Dropped,
		latencyCell(t.Latency, t.Latency.P50), latencyCell(t.Latency, t.Latency.P90), latencyCell(t.Latency, t.Latency.P99), latencyCell(t.Latency, t.Latency.Max))
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "versions (2xx): %s\n", loadgen.FormatCountMap(t.Versions))
	fmt.Fprintf(out, "pacer: %d/s, sent at most %v late\n", r.Rate, roundLatency(r.MaxLag))
	unserved := r.UnservedSeconds()
	if len(unserved) == 0 {
		fmt.Fprintf(out, "every second served (%d of %d)\n", len(r.Seconds), len(r.Seconds))
		return nil
	}
	idx := make([]string, len(unserved))
	for i, s := range unserved {
		idx[i] = fmt.Sprint(s.Index)
	}
	fmt.Fprintf(out, "seconds not served (%d of %d): %s\n", len(unserved), len(r.Seconds), strings.Join(idx, " "))
	if len(r.Errors) > 0 {
		w = table.NewWriter(out)
		fmt.Fprintf(w, "COUNT\tFIRST-SECOND\tERROR\n")
		for _, e := range r.Errors {
			fmt.Fprintf(w, "%d\t%d\t%s\n", e.Count, e.FirstSecond, e.Message)
		}
		return w.Flush()
	}
	return nil
}

// latencyCell is d rounded, or "-" when no request got an answer.
func latencyCell(l loadgen.Latency, d time.Duration) string {
	if l.Count == 0 {
		return "-"
	}
	return roundLatency(d).String()
}

// roundLatency keeps three significant digits or so: 1.23ms, 45.6ms, 2s.
func roundLatency(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}
