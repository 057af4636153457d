// Package deploy holds the deployments of hermes-s6's image — compose.yaml,
// compose.shards.yaml and kubernetes/ — and treats them as data: this
// package reads them strictly, and its tests check them by rule and run
// them (docs/deploy.md).
//
// It is a module of its own so that the Kubernetes API types it decodes
// manifests into (k8s.io/api) never reach the hermes-s6 binary's module.
//
// Two tiers of tests:
//
//   - static, always: every manifest decodes into the k8s.io/api type of
//     its kind with unknown and duplicate fields refused, the compose
//     files decode into the fields they may use, and the rules of
//     docs/deploy.md hold (probes, grace above the drain, read-only root,
//     shards equal to replicas, selectors, volumes, one image and command
//     everywhere, in step with the Dockerfile). With docker-compose on
//     PATH, `docker-compose config` accepts every compose file.
//   - Docker, when HERMES_S6_E2E_IMAGE names an image (make e2e sets it):
//     the StatefulSet's pods emulated under Docker from the manifest
//     (read-only root, /run as a pod-lifetime memory tmpfs, the pod's
//     hostname, env, capabilities) with their probes run as the kubelet
//     would; compose.yaml and compose.shards.yaml brought up, checked and
//     taken down with docker-compose.
package deploy
