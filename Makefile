# Two commands matter on a fresh clone: `make demo` and `make test`.
# Both set everything up first (npm packages, the pinned tool binaries built
# from Go modules under tools/, the TypeScript build).

SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help

NODE_MODULES := node_modules/.package-lock.json

.PHONY: help setup deps tools build generate lint typecheck test test-unit test-integration demo cluster-up cluster-down cluster-status bench clean chart image

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(NODE_MODULES): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: $(NODE_MODULES) ## install npm packages

tools: ## build (or link cached) etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, kustomize, sops, age
	./hack/tools.sh

build: deps ## compile TypeScript to dist/
	npm run build

setup: deps tools build ## everything the tests and the demo need

generate: build ## regenerate config/crd/ from src/api
	npm run generate

lint: deps ## eslint
	npm run lint

typecheck: deps
	npm run typecheck

test: setup ## set up, lint, then run unit and integration tests against a real local control plane
	npm run lint
	node scripts/run-tests.mjs

test-unit: setup
	node scripts/run-tests.mjs unit

test-integration: setup
	node scripts/run-tests.mjs integration

demo: setup ## start a local control plane, run the controller, roll out a three-stage example
	node dist/hack/demo/demo.js $(DEMO_ARGS)

cluster-up: setup ## start the local control plane in the background; kubeconfig in .tools/kubeconfig
	node --import tsx test/support/controlplane/cli.ts up

cluster-down: ## stop the local control plane and remove its data
	node --import tsx test/support/controlplane/cli.ts down

cluster-status:
	node --import tsx test/support/controlplane/cli.ts status

bench: setup ## benchmarks against peers (kustomize-controller among them) on their own control plane, printed as ratios; rewrites the table in docs/performance.md (BENCH_ONLY=... picks some)
	npm run bench

chart: build ## regenerate the chart's CRD templates (from config/crd) and its README (from values.yaml)
	node dist/hack/chart/chart-crds.js
	./hack/chart-docs.sh

image: ## build the controller image with docker, podman, buildah or nerdctl (skipped when none is installed)
	./hack/image.sh

clean: ## remove build output (keeps the tool cache)
	rm -rf dist .tools/bin
