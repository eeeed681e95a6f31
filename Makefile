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

.PHONY: help tools build extension test test-java test-go vet e2e bench fuzz up down status logs demo demo-login demo-federation clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

build: extension ## build the extension JAR and every Go program into bin/
	@mkdir -p $(BIN)
	@for c in $(COMMANDS); do $(GO) build -o $(BIN)/$$c ./$$c; done

extension: $(EXTENSION_JAR) ## build the Keycloak extension (tests skipped)

$(EXTENSION_JAR): $(shell find $(EXTENSION)/src/main $(EXTENSION)/pom.xml -type f 2>/dev/null)
	$(MVN) -f $(EXTENSION)/pom.xml package -DskipTests

test: tools test-java vet test-go ## run every test: Java unit tests, go vet, Go tests against one real Keycloak and PostgreSQL

tools: ## install what the tests need and is missing (Debian packages, as root), say what is still missing
	@bash .ci/tools

test-java: ## the extension's unit tests (JUnit 5), then its JAR
	$(MVN) -f $(EXTENSION)/pom.xml package

vet:
	$(GO) vet ./...

# One Keycloak and one PostgreSQL for the whole run: devstack exec starts
# them on free ports, sets KEYCLOAK_URL and UMAWIDE_TEST_DATABASE_URL for
# every test package and stops them when the tests end. testreport prints
# go test's usual progress, then every skipped test with its reason and the
# counts; it fails when a test or a package failed.
#
# Then the extension's integration tests (the roads to an RPT, registration,
# the grant's form) once more on the newest supported Keycloak, where the
# protection API makes every Incoming the resource server's own (26.6+): the
# roads must stay closed there too. Run only when the first run passed.
KEYCLOAK_NEWEST ?= 26.7.3
test-go:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/testreport ./internal/testreport
	{ $(GO) run ./devstack exec -- $(GO) test -json $(GO_TEST_FLAGS) ./... && \
	  echo "== the extension's integration tests again, on Keycloak $(KEYCLOAK_NEWEST)" && \
	  $(GO) run ./devstack -keycloak-version $(KEYCLOAK_NEWEST) exec -- $(GO) test -json $(GO_TEST_FLAGS) ./keycloak/extension/integration/...; } | $(BIN)/testreport

# The demo pushes as docs/PROTOCOL.md's defaults say: Keycloak on 8080, Claims
# Provider on 8081, Resource Server on 8082 (all on 127.0.0.1).
DEMO_FILE    ?= testdata/demo/hello-bob.txt
DEMO_TO      ?= http://127.0.0.1:8082/incoming/bob
DEMO_PUSH    := $(BIN)/rqp-client push --to $(DEMO_TO) --file $(DEMO_FILE) --claims-provider http://127.0.0.1:8081
DEMO_INBOX   := RQP_CLIENT_INBOX_LOGIN_PASSWORD=bob-password $(BIN)/rqp-client inbox --incoming $(DEMO_TO) --login-user bob

demo: up ## Alice pushes a file to Bob (client credentials: Alice not involved), then Bob's view of his Incoming
	@echo; echo "== Alice's RqP client pushes $(DEMO_FILE) into Bob's Incoming (client credentials, Alice not involved)"
	$(DEMO_PUSH) --email alice@foo.example
	@echo; echo "== Bob reads his Incoming with his own token of realm bar"
	$(DEMO_INBOX)

# Alice logs in (authorization code + PKCE, loopback redirect). BROWSER_LOGIN=1:
# you log in yourself in a browser (alice / alice-password); otherwise the
# client fills Keycloak's login form over HTTP for her.
demo-login: up ## the same with Alice logging in (BROWSER_LOGIN=1 to log in yourself)
	@echo; echo "== Alice logs in and her RqP client pushes $(DEMO_FILE) into Bob's Incoming"
	$(if $(BROWSER_LOGIN),$(DEMO_PUSH) --login,RQP_CLIENT_LOGIN_PASSWORD=alice-password $(DEMO_PUSH) --login --login-user alice)
	@echo; echo "== Bob reads his Incoming with his own token of realm bar"
	$(DEMO_INBOX)

# Two organisations (foo.example, bar.example), each with its own Keycloak,
# Claims Provider, Resource Server and HTTPS front in its own network
# namespace, push to each other by address. Network namespaces need root.
demo-federation: extension ## foo.example and bar.example push to each other by address over HTTPS (needs root: network namespaces)
	@if [ "$$(id -u)" != 0 ]; then echo "make demo-federation needs root (it builds network namespaces): sudo make demo-federation" >&2; exit 2; fi
	$(GO) run ./internal/ecosystem/demo

e2e: ## only the end-to-end suite (real Keycloak, Claims Provider, Resource Server, rqp-client)
	$(GO) run ./devstack exec -- $(GO) test $(GO_TEST_FLAGS) -v ./e2e/...

# BENCH_FLAGS go to bench (e.g. BENCH_FLAGS="-n 1000 -c 16"; `go run ./bench -h`).
BENCH_FLAGS  ?=
bench: extension ## full flow vs stock Keycloak UMA on the real stack, then the Go benchmarks (bench/results/latest.json)
	$(GO) run ./bench $(BENCH_FLAGS)

# Every fuzz target (package:Name): the parsers of outside input. Their seed
# corpora (testdata/fuzz/<Name>/) also run as ordinary tests in `make test`.
FUZZTIME     ?= 30s
FUZZ_TARGETS := \
	./internal/uma:FuzzParseWWWAuthenticate ./internal/uma:FuzzDecodePushedClaims ./internal/uma:FuzzCanonicalIncomingURL \
	./internal/uma:FuzzUnverifiedTicketClaims ./internal/uma:FuzzBearerToken \
	./internal/jwtverify:FuzzVerify \
	./claims-provider/internal/server:FuzzClaimsTokenRequest \
	./claims-provider/internal/provider:FuzzParseForm \
	./resource-server/internal/server:FuzzIncomingRequest ./resource-server/internal/server:FuzzSafeFileName \
	./resource-server/internal/owner:FuzzValid \
	./rqp-client/rqp:FuzzCheckClaimsToken ./rqp-client/rqp:FuzzEmailDomain
fuzz: ## run each fuzz target for FUZZTIME (default 30s), one at a time
	@for t in $(FUZZ_TARGETS); do \
	  echo "== $${t#*:} ($${t%%:*}, $(FUZZTIME))"; \
	  $(GO) test -run='^$$' -fuzz="^$${t#*:}$$" -fuzztime=$(FUZZTIME) $${t%%:*} || exit 1; \
	done

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
