// Module gitops-bot/testenv/yamljson is the YAML-to-JSON conversion of the
// Kubernetes API server and kubectl, as a command for the parity tests.
// The versions are the ones k8s.io/kubernetes v1.35.8 (testenv/go.mod) builds
// with; move them together with it. testenv/build.sh yamljson builds it.
module gitops-bot/testenv/yamljson

go 1.22

require sigs.k8s.io/yaml v1.6.0

require go.yaml.in/yaml/v2 v2.4.3 // indirect
