package release

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/audit"
)

// ErrVerifyFailed is returned when a trail does not verify.
var ErrVerifyFailed = errors.New("audit verification failed")

// ExportLine is one line of `cafe audit export`: an entry and the order
// whose trail it belongs to.
type ExportLine struct {
	Namespace string `json:"namespace"`
	Order     string `json:"order"`
	cafev1alpha1.AuditEntry
}

// auditOptions are the flags of `cafe audit`.
type auditOptions struct {
	Since         time.Duration
	AllNamespaces bool
	File          string
	PublicKey     string
	CAFENamespace string
}

// orders lists the orders named (all of the namespace, or of every
// namespace, when none is named).
func (o *Options) orders(ctx context.Context, names []string, all bool) ([]cafev1alpha1.ReleaseOrder, error) {
	c, ns, err := o.ClientAndNamespace()
	if err != nil {
		return nil, err
	}
	if len(names) > 0 {
		var out []cafev1alpha1.ReleaseOrder
		for _, n := range names {
			ro := &cafev1alpha1.ReleaseOrder{}
			if err := orderKind.Get(ctx, c, ro, ns, n); err != nil {
				return nil, err
			}
			out = append(out, *ro)
		}
		return out, nil
	}
	list := &cafev1alpha1.ReleaseOrderList{}
	var opts []client.ListOption
	if !all {
		opts = append(opts, client.InNamespace(ns))
	}
	if err := c.List(ctx, list, opts...); err != nil {
		return nil, fmt.Errorf("listing ReleaseOrders: %w", err)
	}
	sort.Slice(list.Items, func(i, j int) bool {
		if list.Items[i].Namespace != list.Items[j].Namespace {
			return list.Items[i].Namespace < list.Items[j].Namespace
		}
		return list.Items[i].Name < list.Items[j].Name
	})
	return list.Items, nil
}

// export is `cafe audit export`: JSON lines, one per entry.
func (o *Options) export(ctx context.Context, names []string, ao auditOptions) error {
	orders, err := o.orders(ctx, names, ao.AllNamespaces)
	if err != nil {
		return err
	}
	var since time.Time
	if ao.Since > 0 {
		since = o.Now().Add(-ao.Since)
	}
	enc := json.NewEncoder(o.Out)
	for _, ro := range orders {
		for _, e := range ro.Status.Audit {
			if e.Time.Time.Before(since) {
				continue
			}
			if err := enc.Encode(ExportLine{Namespace: ro.Namespace, Order: ro.Name, AuditEntry: e}); err != nil {
				return err
			}
		}
	}
	return nil
}

// trail is one order's entries to verify.
type trail struct {
	Ref     string
	Entries []cafev1alpha1.AuditEntry
}

// readExport groups the lines of an export by order, in file order.
func readExport(r io.Reader) ([]trail, error) {
	var out []trail
	index := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var l ExportLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		ref := "ReleaseOrder " + l.Namespace + "/" + l.Order
		i, ok := index[ref]
		if !ok {
			i = len(out)
			index[ref] = i
			out = append(out, trail{Ref: ref})
		}
		out[i].Entries = append(out[i].Entries, l.AuditEntry)
	}
	return out, sc.Err()
}

// verify is `cafe audit verify`.
func (o *Options) verify(ctx context.Context, names []string, ao auditOptions) error {
	var trails []trail
	if ao.File != "" {
		var r io.Reader = o.In
		if ao.File != "-" {
			f, err := os.Open(ao.File)
			if err != nil {
				return err
			}
			defer f.Close()
			r = f
		}
		var err error
		if trails, err = readExport(r); err != nil {
			return fmt.Errorf("%s: %w", ao.File, err)
		}
	} else {
		orders, err := o.orders(ctx, names, ao.AllNamespaces)
		if err != nil {
			return err
		}
		for _, ro := range orders {
			trails = append(trails, trail{Ref: "ReleaseOrder " + ro.Namespace + "/" + ro.Name, Entries: ro.Status.Audit})
		}
	}
	pub, err := o.publicKey(ctx, ao)
	if err != nil {
		return err
	}
	failed := 0
	for _, t := range trails {
		if p := audit.Verify(t.Entries, pub); p != nil {
			failed++
			e := t.Entries[p.Index]
			fmt.Fprintf(o.Out, "FAIL %s: %s [%s %s by %s at %s]\n", t.Ref, p.Error(), e.Action, e.Target, e.Actor, e.Time.UTC().Format(time.RFC3339Nano))
			continue
		}
		fmt.Fprintf(o.Out, "OK   %s: %d entries, chain and signatures verified\n", t.Ref, len(t.Entries))
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d trails", ErrVerifyFailed, failed, len(trails))
	}
	return nil
}

// publicKey reads the key from --public-key (base64, or a file holding
// it) or from CAFE's ConfigMap.
func (o *Options) publicKey(ctx context.Context, ao auditOptions) (ed25519.PublicKey, error) {
	if ao.PublicKey != "" {
		text := ao.PublicKey
		if data, err := os.ReadFile(ao.PublicKey); err == nil {
			text = string(data)
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("--public-key: not a base64 ed25519 public key (or a file holding one)")
		}
		return ed25519.PublicKey(raw), nil
	}
	c, _, err := o.ClientAndNamespace()
	if err != nil {
		return nil, err
	}
	return audit.PublicKey(ctx, c, ao.CAFENamespace)
}
