package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"sigs.k8s.io/yaml"
)

// PrometheusComponent names the Prometheus server (logs, Restart, Kill).
const PrometheusComponent = "prometheus"

// PrometheusJob is one scrape job: its targets, over plain HTTP or TLS.
type PrometheusJob struct {
	// Name is the job label of its series.
	Name string
	// Scheme is http (the default) or https.
	Scheme string
	// Targets are host:port addresses on loopback, scraped at /metrics.
	// More can be added while Prometheus runs (WriteScrapeTargets).
	Targets []string
	// CAFile, CertFile and KeyFile configure https: the CA that signed the
	// target's serving certificate, and a client certificate to present.
	CAFile, CertFile, KeyFile string
	// InsecureSkipVerify accepts any serving certificate (a target that
	// signs its own, on loopback).
	InsecureSkipVerify bool
	// BearerTokenFile holds a token Prometheus sends with every scrape
	// (a ServiceAccount's, for a metrics endpoint behind TokenReview).
	BearerTokenFile string
}

// PrometheusConfig is one Prometheus server on loopback.
type PrometheusConfig struct {
	// Binary is the prometheus executable; empty finds it on PATH (Debian's
	// prometheus package, which make tools installs).
	Binary string
	// Dir holds its configuration, data and log.
	Dir string
	// Port is its HTTP port on 127.0.0.1.
	Port int
	// ScrapeInterval is how often every target is scraped; zero means 2s.
	ScrapeInterval time.Duration
	Jobs           []PrometheusJob
}

// Prometheus is a running Prometheus server.
type Prometheus struct {
	cfg  PrometheusConfig
	proc *process
}

// defaultScrapeInterval: an analysis over 30 seconds of traffic then rests
// on 15 samples per series.
const defaultScrapeInterval = 2 * time.Second

// PrometheusBinary finds the prometheus executable on PATH.
func PrometheusBinary() (string, error) {
	path, err := exec.LookPath("prometheus")
	if err != nil {
		return "", errors.New("prometheus is not installed: run make tools (it installs Debian's prometheus package)")
	}
	return path, nil
}

// StartPrometheus writes cfg's configuration under cfg.Dir, starts
// Prometheus on 127.0.0.1:cfg.Port and waits until it is ready. Its data
// stays in cfg.Dir, so a server started again on the same Dir keeps its
// series.
func StartPrometheus(ctx context.Context, cfg PrometheusConfig) (*Prometheus, error) {
	cfg, err := preparePrometheus(cfg)
	if err != nil {
		return nil, err
	}
	p := &Prometheus{cfg: cfg}
	return p, p.start(ctx)
}

// preparePrometheus fills cfg's defaults and writes its configuration and
// target files. The control plane starts the server from it as one of its
// children (ControlPlane.startPrometheus) instead of through
// StartPrometheus, so that its log, exit and Stop are the control plane's.
func preparePrometheus(cfg PrometheusConfig) (PrometheusConfig, error) {
	if cfg.Binary == "" {
		bin, err := PrometheusBinary()
		if err != nil {
			return cfg, err
		}
		cfg.Binary = bin
	}
	if cfg.ScrapeInterval == 0 {
		cfg.ScrapeInterval = defaultScrapeInterval
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "targets"), 0o755); err != nil {
		return cfg, fmt.Errorf("creating Prometheus's directory: %w", err)
	}
	config, err := prometheusConfig(cfg)
	if err != nil {
		return cfg, err
	}
	configPath := filepath.Join(cfg.Dir, "prometheus.yml")
	if err := os.WriteFile(configPath, config, 0o644); err != nil {
		return cfg, fmt.Errorf("writing %s: %w", configPath, err)
	}
	for _, job := range cfg.Jobs {
		if err := WriteScrapeTargets(cfg.Dir, job.Name, job.Targets); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// prometheusArgs: everything on loopback; no remote write, no lifecycle
// API (the configuration changes only through the target files).
func prometheusArgs(cfg PrometheusConfig) []string {
	return []string{
		"--config.file=" + filepath.Join(cfg.Dir, "prometheus.yml"),
		"--web.listen-address=127.0.0.1:" + strconv.Itoa(cfg.Port),
		"--storage.tsdb.path=" + filepath.Join(cfg.Dir, "data"),
		"--storage.tsdb.retention.time=1d",
		"--log.level=info",
	}
}

func (p *Prometheus) start(ctx context.Context) error {
	proc, err := startProcess(PrometheusComponent, p.cfg.Binary, prometheusArgs(p.cfg), nil, filepath.Join(p.cfg.Dir, "prometheus.log"))
	if err != nil {
		return err
	}
	p.proc = proc
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := WaitHTTP(ctx, HTTPProbe{URL: prometheusReadyURL(p.cfg.Port), Stopped: proc.unexpectedExit}); err != nil {
		proc.stop(5 * time.Second)
		return fmt.Errorf("waiting for Prometheus to be ready: %w", err)
	}
	return nil
}

// URL is the server's base URL (its HTTP API is under /api/v1).
func (p *Prometheus) URL() string { return url(p.cfg.Port) }

// prometheusReadyURL answers 200 once the server serves queries.
func prometheusReadyURL(port int) string { return url(port) + "/-/ready" }

// Stop stops the server (SIGTERM, then SIGKILL after 10 seconds).
func (p *Prometheus) Stop() {
	if p.proc != nil {
		p.proc.stop(10 * time.Second)
	}
}

// Restart starts a stopped server again on the same port and data.
func (p *Prometheus) Restart(ctx context.Context) error {
	p.Stop()
	return p.start(ctx)
}

// fileSDConfig is one file_sd target group, as Prometheus reads it.
type fileSDConfig struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// WriteScrapeTargets replaces the targets of a job of the Prometheus whose
// directory is dir. Prometheus notices the file's change by itself.
func WriteScrapeTargets(dir, job string, targets []string) error {
	groups := []fileSDConfig{}
	if len(targets) > 0 {
		groups = append(groups, fileSDConfig{Targets: targets})
	}
	data, err := json.Marshal(groups)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "targets", job+".json")
	// Written whole and renamed: Prometheus never reads half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("writing scrape targets of %s: %w", job, err)
	}
	return os.Rename(tmp, path)
}

// prometheusConfig is the server's prometheus.yml: one scrape job per
// PrometheusJob, its targets read from targets/<job>.json.
func prometheusConfig(cfg PrometheusConfig) ([]byte, error) {
	type tlsConfig struct {
		CAFile             string `json:"ca_file,omitempty"`
		CertFile           string `json:"cert_file,omitempty"`
		KeyFile            string `json:"key_file,omitempty"`
		InsecureSkipVerify bool   `json:"insecure_skip_verify,omitempty"`
	}
	type fileSD struct {
		Files []string `json:"files"`
	}
	type authorization struct {
		CredentialsFile string `json:"credentials_file"`
	}
	type scrapeConfig struct {
		JobName       string         `json:"job_name"`
		Scheme        string         `json:"scheme,omitempty"`
		TLSConfig     *tlsConfig     `json:"tls_config,omitempty"`
		Authorization *authorization `json:"authorization,omitempty"`
		FileSDConfigs []fileSD       `json:"file_sd_configs"`
	}
	interval := model(cfg.ScrapeInterval)
	doc := map[string]any{
		"global": map[string]string{"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
	}
	var jobs []scrapeConfig
	for _, j := range cfg.Jobs {
		if j.Name == "" {
			return nil, errors.New("a Prometheus scrape job needs a name")
		}
		sc := scrapeConfig{JobName: j.Name, Scheme: j.Scheme, FileSDConfigs: []fileSD{{Files: []string{filepath.Join(cfg.Dir, "targets", j.Name+".json")}}}}
		if j.Scheme == "https" {
			sc.TLSConfig = &tlsConfig{CAFile: j.CAFile, CertFile: j.CertFile, KeyFile: j.KeyFile, InsecureSkipVerify: j.InsecureSkipVerify}
		}
		if j.BearerTokenFile != "" {
			sc.Authorization = &authorization{CredentialsFile: j.BearerTokenFile}
		}
		jobs = append(jobs, sc)
	}
	doc["scrape_configs"] = jobs
	return yaml.Marshal(doc)
}

// model renders a duration as Prometheus writes them (2s, 500ms, 1m).
func model(d time.Duration) string {
	if d%time.Second != 0 {
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}
