package release

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
	"github.com/cafe-io/cafe/internal/audit"
)

// ErrVerifyFailed is returned when a trail does not verify.
var ErrVerifyFailed = errors.New("audit verification failed")

// ExportLine is one line of `cafe audit export`: an entry of an order's
// trail or, last for each order, its head line: the signed head and
// whether the order has progressed (so its trail cannot be empty).
type ExportLine struct {
	Namespace string    `json:"namespace"`
	Order     string    `json:"order"`
	UID       types.UID `json:"uid,omitempty"`
	*cafev1alpha1.AuditEntry
	Head       *cafev1alpha1.AuditHead `json:"head,omitempty"`
	Progressed bool                    `json:"progressed,omitempty"`
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
			if err := enc.Encode(ExportLine{Namespace: ro.Namespace, Order: ro.Name, UID: ro.UID, AuditEntry: &e}); err != nil {
				return err
			}
		}
		rec := audit.OrderRecord(&ro)
		if err := enc.Encode(ExportLine{Namespace: ro.Namespace, Order: ro.Name, UID: ro.UID, Head: rec.Head, Progressed: rec.Progressed}); err != nil {
			return err
		}
	}
	return nil
}

// trail is one order's record to verify.
type trail struct {
	Ref string
	audit.Record
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
			out = append(out, trail{Ref: ref, Record: audit.Record{Subject: audit.Subject{Namespace: l.Namespace, Name: l.Order, UID: l.UID}}})
		}
		if l.AuditEntry == nil {
			out[i].Head, out[i].Progressed = l.Head, l.Progressed
			continue
		}
		out[i].Trail = append(out[i].Trail, *l.AuditEntry)
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
			trails = append(trails, trail{Ref: "ReleaseOrder " + ro.Namespace + "/" + ro.Name, Record: audit.OrderRecord(&ro)})
		}
	}
	keys, err := o.trustedKeys(ctx, ao)
	if err != nil {
		return err
	}
	failed := 0
	for _, t := range trails {
		rep, p := audit.Verify(t.Record, keys)
		if p != nil {
			failed++
			fmt.Fprintf(o.Out, "FAIL %s: %s%s\n", t.Ref, p.Error(), entryNote(t.Trail, p))
			continue
		}
		fmt.Fprintf(o.Out, "OK   %s: %d entries, chain, signatures and signed head verified%s\n", t.Ref, rep.Entries, signedBy(rep))
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d trails", ErrVerifyFailed, failed, len(trails))
	}
	return nil
}

// entryNote describes the entry a problem names.
func entryNote(entries []cafev1alpha1.AuditEntry, p *audit.Problem) string {
	if p.Index < 0 || p.Index >= len(entries) {
		return ""
	}
	e := entries[p.Index]
	return fmt.Sprintf(" [%s %s by %s at %s, key %s]", e.Action, e.Target, e.Actor, e.Time.UTC().Format(time.RFC3339Nano), e.KeyID)
}

// signedBy says which key signed which entries: "; key K1: entries 1-4,
// key K2: entries 5-9; head: key K2".
func signedBy(rep audit.Report) string {
	if rep.Entries == 0 {
		return ""
	}
	var spans []string
	from := 0
	for i := 1; i <= len(rep.KeyIDs); i++ {
		if i == len(rep.KeyIDs) || rep.KeyIDs[i] != rep.KeyIDs[from] {
			spans = append(spans, fmt.Sprintf("key %s: entries %d-%d", rep.KeyIDs[from], from+1, i))
			from = i
		}
	}
	return "; " + strings.Join(spans, ", ") + "; head: key " + rep.HeadKeyID
}

// trustedKeys are the keys --public-key pins (a PEM file from
// `cafe audit export-keys`, a base64 key, or a file holding one) or, when
// it is not given, the keys CAFE publishes in the cluster.
func (o *Options) trustedKeys(ctx context.Context, ao auditOptions) (audit.KeyRing, error) {
	if ao.PublicKey != "" {
		text := ao.PublicKey
		if data, err := os.ReadFile(ao.PublicKey); err == nil {
			text = string(data)
		}
		keys, err := audit.ParseKeys([]byte(text))
		if err != nil {
			return nil, fmt.Errorf("--public-key: %w", err)
		}
		return audit.NewKeyRing(keys...), nil
	}
	c, _, err := o.ClientAndNamespace()
	if err != nil {
		return nil, err
	}
	b, err := audit.PublishedKeys(ctx, c, ao.CAFENamespace)
	if err != nil {
		return nil, err
	}
	return b.Ring(), nil
}

// exportKeys is `cafe audit export-keys`: the published keys as PEM, to pin
// at install time and after each rotation.
func (o *Options) exportKeys(ctx context.Context, ao auditOptions) error {
	c, _, err := o.ClientAndNamespace()
	if err != nil {
		return err
	}
	b, err := audit.PublishedKeys(ctx, c, ao.CAFENamespace)
	if err != nil {
		return err
	}
	data, err := audit.EncodeKeys(b)
	if err != nil {
		return err
	}
	_, err = o.Out.Write(data)
	return err
}

// rotateKey is `cafe audit rotate-key`.
func (o *Options) rotateKey(ctx context.Context, ao auditOptions) error {
	c, _, err := o.ClientAndNamespace()
	if err != nil {
		return err
	}
	id, err := audit.Rotate(ctx, c, ao.CAFENamespace)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "CAFE now signs with key %s (within %s); earlier keys stay published as retired in %s/%s.\nPin the new set: cafe audit export-keys > keys.pem\n",
		id, audit.DefaultKeyRecheck, ao.CAFENamespace, audit.PublicKeyConfig)
	return nil
}
