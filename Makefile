# umawide: every task of the project. `make help` lists them.
#
# Prerequisites: Go 1.26, Java 17+ and Maven (`.ci/run` checks and installs them).
# Keycloak itself is downloaded from Maven Central on first use into
# ~/.cache/umawide (UMAWIDE_CACHE_DIR), never into the source tree.

SHELL        := /bin/bash
.SHELLFLAGS  := -eu -o pipefail -c
GO           ?= go
MVN          ?= mvn -B -q -Dstyle.color=never
BIN          := bin
RUN_DIR      ?= .run
EXTENSION    := keycloak/extension
EXTENSION_JAR:= $(EXTENSION)/target/umawide-keycloak-extension.jar
GO_TEST_FLAGS?= -count=1 -timeout 25m

# The Go programs: one folder each, built into bin/.
COMMANDS     := devstack $(patsubst %/main.go,%,$(wildcard claims-provider/main.go resource-server/main.go rqp-client/main.go))

.PHONY: help build extension test test-java test-go vet up down status logs demo clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

build: extension ## build the extension JAR and every Go program into bin/
	@mkdir -p $(BIN)
	@for c in $(COMMANDS); do $(GO) build -o $(BIN)/$$c ./$$c; done

extension: $(EXTENSION_JAR) ## build the Keycloak extension (tests skipped)

$(EXTENSION_JAR): $(shell find $(EXTENSION)/src/main $(EXTENSION)/pom.xml -type f 2>/dev/null)
	$(MVN) -f $(EXTENSION)/pom.xml package -DskipTests

test: test-java vet test-go ## run every test: Java unit tests, go vet, Go tests against one real Keycloak

test-java: ## the extension's unit tests (JUnit 5), then its JAR
	$(MVN) -f $(EXTENSION)/pom.xml package

vet:
	$(GO) vet ./...

# One Keycloak for the whole run: devstack exec starts it on free ports, sets
# KEYCLOAK_URL for every test package and stops it when the tests end.
test-go:
	$(GO) run ./devstack exec -- $(GO) test $(GO_TEST_FLAGS) ./...

up: build ## start Keycloak and the services in the background (logs in .run/logs)
	$(BIN)/devstack -run-dir $(RUN_DIR) up

down: ## stop everything `make up` started
	@if [ -x $(BIN)/devstack ]; then $(BIN)/devstack -run-dir $(RUN_DIR) down; else $(GO) run ./devstack -run-dir $(RUN_DIR) down; fi

status: ## what runs where
	@$(GO) run ./devstack -run-dir $(RUN_DIR) status

logs: ## follow the logs of the background stack
	tail -n 50 -F $(RUN_DIR)/logs/*.log

clean: down ## stop the stack, remove build output and local state
	rm -rf $(BIN) $(RUN_DIR) $(EXTENSION)/target
