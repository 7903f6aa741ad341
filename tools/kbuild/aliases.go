package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxAliasNodes is how many nodes YAML aliases may add, when expanded, to
// everything one build reads. kustomize expands aliases when it converts documents to objects;
// a few kilobytes of nested aliases ("billion laughs") expand to billions of
// nodes. Ordinary files use a handful of aliases, far below this.
const maxAliasNodes = 100_000

var errAliasCycle = errors.New("an alias refers to a node that contains it")

// checkAliases refuses a YAML file whose aliases expand past maxAliasNodes,
// before kustomize expands them: the memory budget would stop such a build
// anyway, but only after it has spent seconds and the whole budget. Files
// with no anchor or alias are not parsed here; files that do not parse are
// left to kustomize to report. Inline YAML inside a kustomization's strings
// (a patch, say) is not seen here and is bounded by the memory budget alone.
//
// budget is what is left of maxAliasNodes for this build; the nodes the
// file's aliases add are returned, to be taken from it.
func checkAliases(data []byte, shown string, budget int64) (int64, error) {
	return checkAliasesIn(data, shown, 0, budget)
}

// maxEmbedding is how deep YAML held in a string of YAML (an inline patch in
// a kustomization, say) is looked into.
const maxEmbedding = 2

func checkAliasesIn(data []byte, shown string, embedding int, budget int64) (int64, error) {
	if !bytes.Contains(data, []byte("&")) || !bytes.Contains(data, []byte("*")) {
		return 0, nil
	}
	var total int64
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for doc := 1; ; doc++ {
		var root yaml.Node
		if err := dec.Decode(&root); err != nil {
			// The end, or a syntax error kustomize reports itself.
			return total, nil
		}
		expanded, err := expandedSize(&root)
		if err != nil {
			return total, fmt.Errorf("refused to read %q (document %d): %w", shown, doc, err)
		}
		total += expanded - distinctNodes(&root)
		if total > budget {
			return total, fmt.Errorf("refused to read %q (document %d): YAML aliases expand to more than %d nodes in this build (an alias bomb?)", shown, doc, maxAliasNodes)
		}
		if embedding < maxEmbedding {
			added, err := checkEmbedded(&root, shown, embedding+1, budget-total)
			total += added
			if err != nil {
				return total, err
			}
		}
	}
}

// checkEmbedded checks the multi-line strings of n that kustomize may parse
// as YAML in turn: inline patches, generator and transformer configurations.
func checkEmbedded(n *yaml.Node, shown string, embedding int, budget int64) (int64, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" && strings.Contains(n.Value, "\n") {
		return checkAliasesIn([]byte(n.Value), shown, embedding, budget)
	}
	var total int64
	for _, c := range n.Content {
		added, err := checkEmbedded(c, shown, embedding, budget-total)
		total += added
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// expandedSize counts the nodes of n with every alias replaced by what it
// names, stopping early past the limit.
func expandedSize(n *yaml.Node) (int64, error) {
	const inProgress = -1
	memo := map[*yaml.Node]int64{}
	var size func(*yaml.Node) (int64, error)
	size = func(n *yaml.Node) (int64, error) {
		if v, ok := memo[n]; ok {
			if v == inProgress {
				return 0, errAliasCycle
			}
			return v, nil
		}
		memo[n] = inProgress
		var total int64 = 1
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			s, err := size(n.Alias)
			if err != nil {
				return 0, err
			}
			total = s
		}
		for _, c := range n.Content {
			s, err := size(c)
			if err != nil {
				return 0, err
			}
			total += s
			if total > 4*maxAliasNodes+1 {
				break // large enough to decide; keeps the sums small
			}
		}
		memo[n] = total
		return total, nil
	}
	return size(n)
}

// distinctNodes counts the nodes of n without following aliases.
func distinctNodes(n *yaml.Node) int64 {
	var total int64 = 1
	for _, c := range n.Content {
		total += distinctNodes(c)
	}
	return total
}
