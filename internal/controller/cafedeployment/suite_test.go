package cafedeployment_test

import (
	"os"
	"testing"

	"github.com/cafe-io/cafe/test/framework"
)

// The API tests share one real kube-apiserver (with the Gateway API CRDs,
// for traffic steps) and one CAFE manager; the
// tests play kubelet, scheduler and endpointslice controller through the
// API (see framework.ControllerSuite).
var suite = framework.ControllerSuite{GatewayAPI: true}

func TestMain(m *testing.M) { os.Exit(suite.Main(m)) }
