// Package admission is compatkit's Kubernetes admission webhook.
package admission

import (
	_ "github.com/prometheus/client_golang/prometheus"
	_ "k8s.io/api/admission/v1"
	_ "k8s.io/client-go/informers"
	_ "k8s.io/client-go/kubernetes"
)
