package memlimit

import (
	"errors"
	"strings"
	"testing"
)

func TestDecide(t *testing.T) {
	noCgroup := func() (int64, error) { return 0, nil }
	cgroup300Mi := func() (int64, error) { return 300 << 20, nil }
	broken := func() (int64, error) { return 0, errors.New("permission denied") }
	for _, tc := range []struct {
		name, flag, env string
		cgroup          func() (int64, error)
		want            int64
		wantErr         string
	}{
		{name: "auto takes 70% of the container's limit", flag: Auto, cgroup: cgroup300Mi, want: 210 << 20},
		{name: "empty is auto", flag: "", cgroup: cgroup300Mi, want: 210 << 20},
		{name: "auto outside a container sets nothing", flag: Auto, cgroup: noCgroup, want: 0},
		{name: "GOMEMLIMIT wins over auto", flag: Auto, env: "100MiB", cgroup: cgroup300Mi, want: 0},
		{name: "an explicit limit wins over GOMEMLIMIT", flag: "200Mi", env: "100MiB", cgroup: cgroup300Mi, want: 200 << 20},
		{name: "none turns it off", flag: None, cgroup: cgroup300Mi, want: 0},
		{name: "auto names an unreadable cgroup", flag: Auto, cgroup: broken, wantErr: "--memory-limit=auto: reading the container's memory limit: permission denied"},
		{name: "not a quantity", flag: "lots", cgroup: noCgroup, wantErr: `--memory-limit "lots": a quantity such as 256Mi`},
		{name: "zero refused", flag: "0", cgroup: noCgroup, wantErr: `--memory-limit "0": must be more than 0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := decide(tc.flag, tc.env, tc.cgroup)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Bytes != tc.want {
				t.Errorf("limit %d bytes, want %d (%s)", d.Bytes, tc.want, d.Source)
			}
			if d.Source == "" {
				t.Error("no source given for the log")
			}
		})
	}
}

func TestParseCgroupLimit(t *testing.T) {
	for in, want := range map[string]int64{
		"max\n":                 0, // cgroup v2, no limit
		"9223372036854771712\n": 0, // cgroup v1, no limit
		"335544320\n":           320 << 20,
		"  536870912 ":          512 << 20,
	} {
		got, err := parseCgroupLimit(in)
		if err != nil || got != want {
			t.Errorf("parseCgroupLimit(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := parseCgroupLimit("lots"); err == nil {
		t.Error("parseCgroupLimit accepted a value that is no number")
	}
}
