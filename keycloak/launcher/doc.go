// Package launcher gives a running Keycloak with the project's realm files and
// every provider JAR the project builds, the same way for the Makefile, the
// development stack and every Go test.
//
// Where it finds Keycloak, in order:
//
//  1. KEYCLOAK_URL is set: that server, used as it is (it must already have the
//     realms imported and the extension installed). Admin credentials come
//     from KEYCLOAK_ADMIN_USER and KEYCLOAK_ADMIN_PASSWORD.
//  2. A Docker engine answers: quay.io/keycloak/keycloak:<Version> through
//     testcontainers-go.
//  3. Otherwise: the same version's keycloak-quarkus-dist from Maven Central,
//     downloaded once with mvn into a cache outside the source tree
//     ($UMAWIDE_CACHE_DIR, default $XDG_CACHE_HOME/umawide or ~/.cache/umawide),
//     copied into a private instance folder and started as a process with
//     --db=dev-mem, free ports and a modest heap. The first download says what
//     it fetches (Maven's download lines) and how far it is.
//
// Options.Cluster starts a process instead as a node of a cluster on an
// external PostgreSQL (cache ispn, jdbc-ping discovery, its own cluster port
// on 127.0.0.1), as compose.scale.yaml runs Keycloak; deploy/cluster starts
// two.
//
// UMAWIDE_KEYCLOAK_MODE=external|docker|process forces one of them.
//
// A started Keycloak is stopped by Stop, and also when the Go process that
// started it dies in any way (Linux parent-death signal), so an interrupted or
// panicking test run leaves no Java process behind.
package launcher
