package releaseorder

import (
	"time"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// stampedChanges are the changes CAFE's webhooks stamp on apps and
// CafeDeployments: what, and the annotations of who and when.
var stampedChanges = []struct{ what, by, at string }{
	{"confirmed the waiting group", cafev1alpha1.ConfirmedByAnnotation, cafev1alpha1.ConfirmedAtAnnotation},
	{"asked for a fast release (one group, no confirmation)", cafev1alpha1.FastReleaseByAnnotation, cafev1alpha1.FastReleaseAtAnnotation},
	{"changed the release strategy (water level, confirmations, groups)", cafev1alpha1.StrategyChangedByAnnotation, cafev1alpha1.StrategyChangedAtAnnotation},
}

// outsideChanges reads the stamped changes of an object's annotations.
func outsideChanges(ann map[string]string) []outsideChange {
	var out []outsideChange
	for _, s := range stampedChanges {
		by := ann[s.by]
		at, err := time.Parse(time.RFC3339Nano, ann[s.at])
		if by == "" || err != nil {
			continue
		}
		out = append(out, outsideChange{What: s.what, By: by, At: at})
	}
	return out
}
