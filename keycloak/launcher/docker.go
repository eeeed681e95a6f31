package launcher

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Image is the container image of the pinned version.
const Image = "quay.io/keycloak/keycloak:" + Version

// DockerAvailable reports whether a Docker engine answers, without pulling
// anything. It looks for a socket or DOCKER_HOST first so that machines without
// Docker pay nothing.
func DockerAvailable(ctx context.Context) bool {
	if os.Getenv("DOCKER_HOST") == "" {
		if _, err := os.Stat("/var/run/docker.sock"); err != nil {
			return false
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return false
	}
	defer provider.Close()
	return provider.Health(ctx) == nil
}

func startContainer(ctx context.Context, opts Options) (*Keycloak, error) {
	realms, err := RealmFiles(opts.RealmDir)
	if err != nil {
		return nil, err
	}
	var files []testcontainers.ContainerFile
	for _, f := range realms {
		files = append(files, testcontainers.ContainerFile{
			HostFilePath: f, ContainerFilePath: "/opt/keycloak/data/import/" + filepath.Base(f), FileMode: 0o644})
	}
	for _, f := range opts.Providers {
		files = append(files, testcontainers.ContainerFile{
			HostFilePath: f, ContainerFilePath: "/opt/keycloak/providers/" + filepath.Base(f), FileMode: 0o644})
	}
	env := map[string]string{
		"KC_BOOTSTRAP_ADMIN_USERNAME": DefaultAdminUser,
		"KC_BOOTSTRAP_ADMIN_PASSWORD": DefaultAdminPassword,
		"JAVA_OPTS_KC_HEAP":           "-Xms64m -Xmx" + opts.MaxHeap,
	}
	if opts.JavaOpts != "" {
		env["JAVA_OPTS_APPEND"] = opts.JavaOpts
	}
	for k, v := range opts.Env {
		env[k] = v
	}
	opts.Logger.Info("starting Keycloak container", "image", Image)
	c, err := testcontainers.Run(ctx, Image,
		testcontainers.WithExposedPorts("8080/tcp", "9000/tcp"),
		testcontainers.WithEnv(env),
		testcontainers.WithCmd("start-dev", "--import-realm", "--health-enabled=true", "--metrics-enabled=true"),
		testcontainers.WithFiles(files...),
		testcontainers.WithWaitStrategyAndDeadline(opts.StartTimeout,
			wait.ForHTTP("/health/ready").WithPort("9000/tcp")),
	)
	if err != nil {
		if c != nil {
			_ = c.Terminate(context.Background())
		}
		return nil, fmt.Errorf("launcher: starting %s: %w", Image, err)
	}
	host, err := c.Host(ctx)
	if err == nil {
		var http, mgmt string
		if p, perr := c.MappedPort(ctx, "8080/tcp"); perr == nil {
			http = p.Port()
		} else {
			err = perr
		}
		if p, perr := c.MappedPort(ctx, "9000/tcp"); perr == nil {
			mgmt = p.Port()
		} else {
			err = perr
		}
		if err == nil {
			return &Keycloak{
				BaseURL:       "http://" + host + ":" + http,
				ManagementURL: "http://" + host + ":" + mgmt,
				AdminUser:     DefaultAdminUser,
				AdminPassword: DefaultAdminPassword,
				Mode:          ModeDocker,
				Version:       Version,
				stop:          func(ctx context.Context) error { return c.Terminate(ctx) },
			}, nil
		}
	}
	_ = c.Terminate(context.Background())
	return nil, fmt.Errorf("launcher: container address: %w", err)
}
