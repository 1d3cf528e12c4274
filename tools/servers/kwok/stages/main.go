// Command stages prints the Stage objects kwok needs to bring fake nodes and their pods to
// Ready (and to finish and delete pods), as one kwok configuration file. They are kwok's own
// "fast" stages, taken from the pinned module, so they always match the kwok binary built here,
// except pod-complete, which is ours (podComplete below).
package main

import (
	"fmt"
	"strings"

	nodefast "sigs.k8s.io/kwok/kustomize/stage/node/fast"
	podfast "sigs.k8s.io/kwok/kustomize/stage/pod/fast"
)

// podComplete replaces kwok's pod-complete stage (which finishes every Job pod as Succeeded,
// exit code 0, no message): it plays the container's result from two optional pod annotations,
// the test control plane's stand-in for a container that ran.
//
//	kwok.kublambda.io/exit-code            the containers' exit code (default 0); not 0: phase Failed
//	kwok.kublambda.io/termination-message  the containers' state.terminated.message (default none)
//
// Without them it behaves as upstream's. Every container of the pod gets the same result. The
// annotations map may be missing altogether: `with` guards it, as `index` of nil fails.
const podComplete = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-complete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Running'
    - key: '.metadata.ownerReferences.[].kind'
      operator: 'In'
      values:
      - 'Job'
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $code := 0 }}
      {{ $message := "" }}
      {{ with .metadata.annotations }}
      {{ with index . "kwok.kublambda.io/exit-code" }}{{ $code = atoi . }}{{ end }}
      {{ with index . "kwok.kublambda.io/termination-message" }}{{ $message = . }}{{ end }}
      {{ end }}
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: {{ $code }}
            finishedAt: {{ $now | Quote }}
            reason: {{ if eq $code 0 }}Completed{{ else }}Error{{ end }}
            {{ with $message }}message: {{ . | Quote }}{{ end }}
            startedAt: {{ $now | Quote }}
      {{ end }}
      phase: {{ if eq $code 0 }}Succeeded{{ else }}Failed{{ end }}`

func main() {
	stages := []string{nodefast.DefaultNodeInit, podfast.DefaultPodReady, podComplete, podfast.DefaultPodDelete}
	for i, stage := range stages {
		if i > 0 {
			fmt.Println("---")
		}
		fmt.Println(strings.TrimSpace(stage))
	}
}
