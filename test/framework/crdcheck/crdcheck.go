// Package crdcheck admits CAFE's custom resources in-process the way the API
// server does for a create: it prunes unknown fields, applies the schema's
// defaults, and runs the OpenAPI schema validation and the CEL rules of the
// CRDs in config/crd/bases, with k8s.io/apiextensions-apiserver's own code.
// Fuzz targets use it to feed planners only objects a cluster would admit,
// at the speed fuzzing needs; a test in api/v1alpha1 checks its verdicts
// against a real API server.
package crdcheck

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"

	"github.com/cafe-io/cafe/config"
)

// Validator admits objects of one kind.
type Validator struct {
	structural *structuralschema.Structural
	schema     validation.SchemaValidator
	cel        *cel.Validator
}

var (
	loadOnce   sync.Once
	validators map[string]*Validator
	loadErr    error
)

// For returns the validator of kind (CafeDeployment, InPlaceSet, ...), built
// once from the embedded CRDs.
func For(kind string) (*Validator, error) {
	loadOnce.Do(func() { validators, loadErr = load() })
	if loadErr != nil {
		return nil, loadErr
	}
	v, ok := validators[kind]
	if !ok {
		return nil, fmt.Errorf("no CRD for kind %s", kind)
	}
	return v, nil
}

// MustFor is For in a test or fuzz target: it fails tb when kind has no
// validator.
func MustFor(tb testing.TB, kind string) *Validator {
	tb.Helper()
	v, err := For(kind)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func load() (map[string]*Validator, error) {
	objs, err := config.CRDs()
	if err != nil {
		return nil, err
	}
	out := map[string]*Validator{}
	for _, o := range objs {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, crd); err != nil {
			return nil, fmt.Errorf("decoding CRD %s: %w", o.GetName(), err)
		}
		v, err := newValidator(crd)
		if err != nil {
			return nil, fmt.Errorf("CRD %s: %w", crd.Name, err)
		}
		out[crd.Spec.Names.Kind] = v
	}
	return out, nil
}

func newValidator(crd *apiextensionsv1.CustomResourceDefinition) (*Validator, error) {
	if len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Schema == nil {
		return nil, fmt.Errorf("want one version with a schema")
	}
	internal := &apiextensions.JSONSchemaProps{}
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(crd.Spec.Versions[0].Schema.OpenAPIV3Schema, internal, nil); err != nil {
		return nil, err
	}
	s, err := structuralschema.NewStructural(internal)
	if err != nil {
		return nil, err
	}
	sv, _, err := validation.NewSchemaValidator(internal)
	if err != nil {
		return nil, err
	}
	return &Validator{structural: s, schema: sv, cel: cel.NewValidator(s, true, celconfig.PerCallLimit)}, nil
}

// Admit prunes, defaults and validates obj (decoded JSON, modified in
// place) as a create, and returns what the API server would refuse it for;
// none means admitted, and obj is then what would be stored.
func (v *Validator) Admit(ctx context.Context, obj map[string]any) field.ErrorList {
	structuralpruning.Prune(obj, v.structural, true)
	structuraldefaulting.Default(obj, v.structural)
	errs := validation.ValidateCustomResource(nil, obj, v.schema)
	if len(errs) > 0 {
		// The API server stops here too: CEL rules assume a valid schema.
		return errs
	}
	celErrs, _ := v.cel.Validate(ctx, nil, v.structural, obj, nil, celconfig.RuntimeCELCostBudget)
	return append(errs, celErrs...)
}

// Admitted admits obj the way [Validator.Admit] does and decodes what the
// API server would store into a new object of obj's type: nil and the
// refusals when it would refuse obj, and an error only when obj does not
// convert (a bug in the caller, not a refusal). obj is not modified.
func Admitted[T any](ctx context.Context, v *Validator, obj *T) (*T, field.ErrorList, error) {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, nil, fmt.Errorf("converting %T: %w", obj, err)
	}
	if errs := v.Admit(ctx, u); len(errs) > 0 {
		return nil, errs, nil
	}
	admitted := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u, admitted); err != nil {
		return nil, nil, fmt.Errorf("the admitted %T does not decode: %w", obj, err)
	}
	return admitted, nil, nil
}
