// Package deploy holds the deployment's checks, and no code: its tests load
// compose.yaml and compose.scale.yaml with the Compose specification's own
// loader (compose-go) and check them, the Dockerfiles and .dockerignore
// against the code they deploy: every file, build context, Dockerfile stage
// and mounted path exists; every image is pinned and every service runs as
// a non-root user with a health check that its dependants wait for; every
// environment variable names a real flag of the real binary, which accepts
// the values; and the URLs, issuers and secrets of Keycloak's realm files,
// the Claims Provider, the Resource Server and the RqP client agree.
//
// No Docker engine runs where these tests run, so this is what CI can check
// of the containers. deploy/scaleout tests several Resource Server processes
// on one PostgreSQL database; deploy/postgres holds the database's init
// script for compose.scale.yaml.
package deploy
