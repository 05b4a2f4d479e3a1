// ceres-netpol answers "is this traffic allowed?" for the sandbox's traffic simulator, with the
// NetworkPolicy semantics of cyclonus's policy engine (github.com/mattfenwick/cyclonus/pkg/matcher).
//
// The sandbox has no CNI, so NetworkPolicies are stored but enforced by nobody; the simulator asks
// this process instead and refuses what it denies. Protocol: one JSON request per line on stdin,
// one JSON answer per line on stdout, in order.
//
//	request: {"policies": [<networking.k8s.io/v1 NetworkPolicy>...],
//	          "queries": [{"source": <peer>, "destination": <peer>,
//	                       "port": 8080, "portName": "http", "protocol": "TCP"}...]}
//	peer:    {"namespace": "ns", "namespaceLabels": {...}, "podLabels": {...}} (a pod)
//	         or {"ip": "203.0.113.7"} (outside the cluster)
//	answer:  {"results": [{"allowed": bool, "ingress": bool, "egress": bool,
//	                       "denying": ["ns/name", ...]}...]}
//	         or {"error": "..."} for a request that cannot be read (the process goes on).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/mattfenwick/cyclonus/pkg/matcher"
	v1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

type peer struct {
	Namespace       string            `json:"namespace"`
	NamespaceLabels map[string]string `json:"namespaceLabels"`
	PodLabels       map[string]string `json:"podLabels"`
	IP              string            `json:"ip"`
}

type query struct {
	Source      peer   `json:"source"`
	Destination peer   `json:"destination"`
	Port        int    `json:"port"`
	PortName    string `json:"portName"`
	Protocol    string `json:"protocol"`
}

type request struct {
	Policies []*networkingv1.NetworkPolicy `json:"policies"`
	Queries  []query                       `json:"queries"`
}

type result struct {
	Allowed bool     `json:"allowed"`
	Ingress bool     `json:"ingress"`
	Egress  bool     `json:"egress"`
	Denying []string `json:"denying"`
}

type answer struct {
	Results []result `json:"results,omitempty"`
	Error   string   `json:"error,omitempty"`
}

func trafficPeer(p peer) (*matcher.TrafficPeer, error) {
	if p.Namespace == "" {
		if p.IP == "" {
			return nil, fmt.Errorf("a peer needs a namespace (a pod) or an ip (outside the cluster)")
		}
		return &matcher.TrafficPeer{IP: p.IP}, nil
	}
	namespaceLabels := map[string]string{"kubernetes.io/metadata.name": p.Namespace}
	for key, value := range p.NamespaceLabels {
		namespaceLabels[key] = value
	}
	podLabels := p.PodLabels
	if podLabels == nil {
		podLabels = map[string]string{}
	}
	return &matcher.TrafficPeer{
		IP:       p.IP,
		Internal: &matcher.InternalPeer{Namespace: p.Namespace, NamespaceLabels: namespaceLabels, PodLabels: podLabels},
	}, nil
}

// denying names the policies (namespace/name) of the targets that selected the pod without allowing
// the traffic; empty when some target allowed it.
func denying(direction *matcher.DirectionResult) []string {
	if direction.IsAllowed() {
		return nil
	}
	seen := map[string]bool{}
	names := []string{}
	for _, target := range direction.DenyingTargets {
		for _, rule := range target.SourceRules {
			name := rule.Namespace + "/" + rule.Name
			if !seen[name] {
				seen[name] = true
				names = append(names, name)
			}
		}
	}
	sort.Strings(names)
	return names
}

func evaluate(req request) ([]result, error) {
	for index, policy := range req.Policies {
		if policy == nil {
			return nil, fmt.Errorf("policies[%d] is null", index)
		}
		if policy.Namespace == "" {
			return nil, fmt.Errorf("policies[%d] (%s) has no namespace", index, policy.Name)
		}
	}
	policy := matcher.BuildNetworkPolicies(true, req.Policies)
	results := make([]result, 0, len(req.Queries))
	for index, q := range req.Queries {
		source, err := trafficPeer(q.Source)
		if err != nil {
			return nil, fmt.Errorf("queries[%d].source: %w", index, err)
		}
		destination, err := trafficPeer(q.Destination)
		if err != nil {
			return nil, fmt.Errorf("queries[%d].destination: %w", index, err)
		}
		protocol := v1.Protocol(q.Protocol)
		if protocol == "" {
			protocol = v1.ProtocolTCP
		}
		if q.Port < 1 || q.Port > 65535 {
			return nil, fmt.Errorf("queries[%d].port: %d is not a port", index, q.Port)
		}
		verdict := policy.IsTrafficAllowed(&matcher.Traffic{
			Source: source, Destination: destination,
			ResolvedPort: q.Port, ResolvedPortName: q.PortName, Protocol: protocol,
		})
		results = append(results, result{
			Allowed: verdict.IsAllowed(),
			Ingress: verdict.Ingress.IsAllowed(),
			Egress:  verdict.Egress.IsAllowed(),
			Denying: append(denying(verdict.Egress), denying(verdict.Ingress)...),
		})
	}
	return results, nil
}

func main() {
	reader := bufio.NewReaderSize(os.Stdin, 1<<20)
	writer := bufio.NewWriter(os.Stdout)
	encoder := json.NewEncoder(writer)
	for {
		line, err := reader.ReadBytes('\n')
		if len(line) > 0 {
			var req request
			var out answer
			if decodeErr := json.Unmarshal(line, &req); decodeErr != nil {
				out.Error = "the request is not a JSON policy query: " + decodeErr.Error()
			} else if results, evalErr := evaluate(req); evalErr != nil {
				out.Error = evalErr.Error()
			} else {
				out.Results = results
			}
			if out.Results == nil && out.Error == "" {
				out.Results = []result{}
			}
			if encodeErr := encoder.Encode(out); encodeErr != nil {
				fmt.Fprintln(os.Stderr, "ceres-netpol:", encodeErr)
				os.Exit(1)
			}
			if flushErr := writer.Flush(); flushErr != nil {
				os.Exit(1)
			}
		}
		if err != nil {
			return
		}
	}
}
