package cafeappservice

import (
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	cafev1alpha1 "github.com/cafe-io/cafe/api/v1alpha1"
)

// appSelector selects the pods of every revision of an app.
func appSelector(app string) map[string]string {
	return map[string]string{cafev1alpha1.AppLabel: app}
}

// renderPodTemplate returns the pod template the CafeDeployment runs for
// rev: the revision's template, labelled with the app and the revision,
// with every container reading the revision's config from its ConfigMap
// (env entries after the template's own, files mounted read-only at
// mountPath). It is pure and deterministic (sorted keys), so rendering a
// revision twice yields the same template and so the same revision hash in
// the CafeDeployment.
func renderPodTemplate(app string, rev *cafev1alpha1.AppRevision) corev1.PodTemplateSpec {
	t := *rev.Spec.Template.DeepCopy()
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	t.Labels[cafev1alpha1.AppLabel] = app
	t.Labels[cafev1alpha1.AppRevisionLabel] = rev.Name
	cm := rev.Spec.ConfigMapName
	cfg := rev.Spec.Config
	if cm == "" || cfg.HasEmptyConfig() {
		return t
	}
	envNames := slices.Sorted(maps.Keys(cfg.Env))
	fileNames := slices.Sorted(maps.Keys(cfg.Files))
	mountPath := cfg.MountPath
	if mountPath == "" {
		mountPath = cafev1alpha1.DefaultConfigMountPath
	}
	inject := func(cs []corev1.Container) {
		for i := range cs {
			for _, k := range envNames {
				cs[i].Env = append(cs[i].Env, corev1.EnvVar{Name: k, ValueFrom: &corev1.EnvVarSource{
					ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: cm}, Key: k},
				}})
			}
			if len(fileNames) > 0 {
				cs[i].VolumeMounts = append(cs[i].VolumeMounts, corev1.VolumeMount{Name: cafev1alpha1.ConfigVolumeName, MountPath: mountPath, ReadOnly: true})
			}
		}
	}
	inject(t.Spec.InitContainers)
	inject(t.Spec.Containers)
	if len(fileNames) > 0 {
		items := make([]corev1.KeyToPath, 0, len(fileNames))
		for _, f := range fileNames {
			items = append(items, corev1.KeyToPath{Key: f, Path: f})
		}
		t.Spec.Volumes = append(t.Spec.Volumes, corev1.Volume{Name: cafev1alpha1.ConfigVolumeName, VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: cm}, Items: items},
		}})
	}
	return t
}

// desiredCafeDeployment is the CafeDeployment that releases rev with the
// app's workload settings. fast asks for a release in one group
// (cafe.io/fast-release naming rev, which the template's
// cafe.io/app-revision label names too).
func desiredCafeDeployment(app *cafev1alpha1.CafeAppService, rev *cafev1alpha1.AppRevision, fast bool) *cafev1alpha1.CafeDeployment {
	w := app.Spec.Workload
	cd := &cafev1alpha1.CafeDeployment{
		TypeMeta: metav1.TypeMeta{APIVersion: cafev1alpha1.GroupVersion.String(), Kind: "CafeDeployment"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: app.Namespace,
			Name:      app.Name,
			Labels:    appSelector(app.Name),
		},
		Spec: cafev1alpha1.CafeDeploymentSpec{
			Replicas:   w.Replicas,
			Selector:   &metav1.LabelSelector{MatchLabels: appSelector(app.Name)},
			Template:   renderPodTemplate(app.Name, rev),
			PodSetType: w.PodSetType,
			Topology:   *w.Topology.DeepCopy(),
			Strategy:   *w.Strategy.DeepCopy(),
		},
	}
	if writesEndpoints(app) {
		cd.Spec.Endpoints = &cafev1alpha1.PodSetEndpoints{Service: app.Name}
	}
	if len(w.ClassicUnits) > 0 && rev.Spec.ClassicArtifact != nil {
		cd.Spec.Classic = &cafev1alpha1.ClassicUnits{Units: slices.Clone(w.ClassicUnits), Artifact: renderClassicArtifact(rev)}
	}
	if fast {
		cd.Annotations = map[string]string{cafev1alpha1.FastReleaseAnnotation: rev.Name}
	}
	return cd
}

// renderClassicArtifact is the revision's classic artifact with the
// revision's config env given to the process (as the pods get it from the
// revision's ConfigMap): the artifact's own variables, then the config's
// in name order, a config value replacing an artifact variable of the same
// name. Config files are not delivered to classic instances.
func renderClassicArtifact(rev *cafev1alpha1.AppRevision) cafev1alpha1.ClassicArtifact {
	a := *rev.Spec.ClassicArtifact.DeepCopy()
	cfg := rev.Spec.Config.Env
	a.Env = slices.DeleteFunc(a.Env, func(e cafev1alpha1.ClassicEnvVar) bool { _, set := cfg[e.Name]; return set })
	for _, k := range slices.Sorted(maps.Keys(cfg)) {
		a.Env = append(a.Env, cafev1alpha1.ClassicEnvVar{Name: k, Value: cfg[k]})
	}
	return a
}

// desiredConfigMap is the immutable ConfigMap holding a revision's config:
// env values and file contents under their names (the API keeps the two
// sets of names apart).
func desiredConfigMap(namespace, app, name string, cfg cafev1alpha1.AppConfig) *corev1.ConfigMap {
	data := map[string]string{}
	for k, v := range cfg.Env {
		data[k] = v
	}
	for k, v := range cfg.Files {
		data[k] = v
	}
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: appSelector(app)},
		Data:       data,
		Immutable:  ptr.To(true),
	}
}

// writesEndpoints: CAFE writes the EndpointSlices of the app's Service
// (spec.workload.endpoints CAFE), so the Service has no selector and the
// CafeDeployment names it in spec.endpoints.
func writesEndpoints(app *cafev1alpha1.CafeAppService) bool {
	return app.Spec.Workload.Endpoints == cafev1alpha1.AppEndpointsCAFE
}

// desiredService is the app's Service for spec s. The ClusterIP and node
// ports are left to the cluster, so applying it never changes them. When
// CAFE writes the app's endpoints the Service selects nothing: the
// EndpointSlice controller leaves a Service without a selector alone.
func desiredService(app *cafev1alpha1.CafeAppService, s cafev1alpha1.AppServiceSpec) *corev1.Service {
	svc := &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: app.Namespace,
			Name:      app.Name,
			Labels:    appSelector(app.Name),
		},
		Spec: corev1.ServiceSpec{
			Type:                     s.Type,
			SessionAffinity:          s.SessionAffinity,
			ExternalTrafficPolicy:    s.ExternalTrafficPolicy,
			LoadBalancerSourceRanges: s.LoadBalancerSourceRanges,
		},
	}
	if !writesEndpoints(app) {
		svc.Spec.Selector = appSelector(app.Name)
	}
	if s.PublishInRegistry {
		svc.Labels[cafev1alpha1.RegistryPublishLabel] = "true"
	}
	if s.SessionAffinity == corev1.ServiceAffinityClientIP && s.SessionAffinityTimeoutSeconds != nil {
		svc.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: s.SessionAffinityTimeoutSeconds}}
	}
	for _, p := range s.Ports {
		target := p.TargetPort
		if target == 0 {
			target = p.Port
		}
		protocol := p.Protocol
		if protocol == "" {
			protocol = corev1.ProtocolTCP
		}
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{
			Name: p.Name, Protocol: protocol, Port: p.Port, TargetPort: intstr.FromInt32(target), NodePort: p.NodePort,
		})
	}
	return svc
}
