// Package docker runs each user's single-user server in its own container on a Docker Engine:
// a fresh container per start (so no stale token or image is ever reused), a named volume per
// user for the notebook directory (so work survives stop, start and container removal), a
// user-defined bridge network the hub reaches the containers on, memory and CPU limits, and
// labels that let a restarted hub find and adopt its running containers (spawner.Lister).
//
// The hub reaches a container at http://<container IP on the network>:8888. The container
// reaches the hub at HubURLFromContainer: the network's gateway address when the hub runs on
// the host, or the hub container's own address on the network when ConnectToNetwork is set.
// The hub must listen on that address and set JUPYTERHUB_API_URL from it.
package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/ohtkhub/ohtkhub/internal/spawner"
)

var (
	_ spawner.Spawner = (*Spawner)(nil)
	_ spawner.Lister  = (*Spawner)(nil)
)

// Labels put on every container, volume and network the spawner creates.
const (
	LabelHub  = "org.ohtkhub.hub"
	LabelUser = "org.ohtkhub.user"
	// LabelRole marks the short-lived container that prepares a new volume.
	LabelRole = "org.ohtkhub.role"
)

// Port is the port the single-user server listens on inside its container.
const Port = 8888

// Defaults for the Config fields left empty.
const (
	DefaultImage        = "ohtkhub-notebook:latest"
	DefaultNetwork      = "ohtkhub"
	DefaultHubID        = "ohtkhub"
	DefaultNotebookDir  = "/home/jovyan/work"
	DefaultNamePrefix   = "ohtkhub-"
	DefaultVolumePrefix = "ohtkhub-user-"
)

// ErrImageNotFound is wrapped by Start's error when the configured image is not on the
// engine. Nothing is ever pulled: images are built locally or loaded by the operator.
var ErrImageNotFound = errors.New("docker: image not found")

// Config configures the spawner.
type Config struct {
	// Image is the single-user image; default ohtkhub-notebook:latest (images/notebook/build.sh).
	Image string
	// Network is a user-defined bridge network the containers join; created if missing.
	// Default "ohtkhub".
	Network string
	// HubID is the value of the org.ohtkhub.hub label: containers carrying another value belong
	// to another hub and are never touched. Default "ohtkhub".
	HubID string
	// MemoryLimit is the container's memory limit in bytes; 0 means none.
	MemoryLimit int64
	// CPULimit is the number of CPUs the container may use (1.5 = one and a half); 0 means none.
	CPULimit float64
	// NotebookDir is where the user's volume is mounted and where the server starts; default
	// /home/jovyan/work.
	NotebookDir string
	// NamePrefix starts every container name; default "ohtkhub-" (container ohtkhub-<slug>).
	NamePrefix string
	// VolumePrefix starts every volume name; default "ohtkhub-user-" (volume ohtkhub-user-<slug>).
	VolumePrefix string
	// Env is added to every server's environment; the hub's Spec.Env wins over it.
	Env map[string]string
	// Host is the Docker daemon address (unix:///var/run/docker.sock, tcp://…); default from
	// DOCKER_HOST and the other DOCKER_* variables, else the local socket.
	Host string
	// ConnectToNetwork is for a hub that itself runs in a container: New connects that
	// container (found by its host name, which Docker sets to the container id) to Network, and
	// HubURLFromContainer uses its address there instead of the network's gateway.
	ConnectToNetwork bool
}

// Spawner starts single-user servers in Docker containers. All methods may be called
// concurrently: nothing is serialised across users.
type Spawner struct {
	cfg     Config
	cli     *client.Client
	hubAddr netip.Addr
}

// New connects to the Docker daemon (negotiating the API version down to the daemon's, 1.41
// for Docker 20.10 included), creates the network if it is missing and works out the address
// containers reach the hub at. It gives up after 30 seconds.
func New(cfg Config) (*Spawner, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if cfg.Image == "" {
		cfg.Image = DefaultImage
	}
	if cfg.Network == "" {
		cfg.Network = DefaultNetwork
	}
	if cfg.HubID == "" {
		cfg.HubID = DefaultHubID
	}
	if cfg.NotebookDir == "" {
		cfg.NotebookDir = DefaultNotebookDir
	}
	if cfg.NamePrefix == "" {
		cfg.NamePrefix = DefaultNamePrefix
	}
	if cfg.VolumePrefix == "" {
		cfg.VolumePrefix = DefaultVolumePrefix
	}
	if cfg.MemoryLimit < 0 || cfg.CPULimit < 0 {
		return nil, errors.New("docker: memory and CPU limits cannot be negative")
	}
	if !strings.HasPrefix(cfg.NotebookDir, "/") {
		return nil, fmt.Errorf("docker: notebook directory %q is not an absolute path", cfg.NotebookDir)
	}
	for _, p := range []string{cfg.NamePrefix, cfg.VolumePrefix, cfg.Network} {
		if !validName.MatchString(p) {
			return nil, fmt.Errorf("docker: %q is not a valid Docker name", p)
		}
	}
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if cfg.Host != "" {
		opts = append(opts, client.WithHost(cfg.Host))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	s := &Spawner{cfg: cfg, cli: cli}
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("docker: the daemon at %s does not answer: %w", cli.DaemonHost(), err)
	}
	gw, err := s.ensureNetwork(ctx)
	if err != nil {
		cli.Close()
		return nil, err
	}
	s.hubAddr = gw
	if cfg.ConnectToNetwork {
		addr, err := s.connectSelf(ctx)
		if err != nil {
			cli.Close()
			return nil, err
		}
		s.hubAddr = addr
	}
	return s, nil
}

// Close releases the client's connections. Containers keep running.
func (s *Spawner) Close() error { return s.cli.Close() }

// HubAddress is the address containers reach the hub at: the network's gateway (the host's
// address on the bridge) or, with ConnectToNetwork, the hub container's address on it.
func (s *Spawner) HubAddress() netip.Addr { return s.hubAddr }

// HubURLFromContainer is the hub's base URL as seen from inside a container, for a hub
// listening on port hubPort of HubAddress: the hub's internal URL (JUPYTERHUB_API_URL is this
// plus the hub's base path and "hub/api").
func (s *Spawner) HubURLFromContainer(hubPort int) string {
	return "http://" + net.JoinHostPort(s.hubAddr.String(), strconv.Itoa(hubPort))
}

// ContainerName is the name of the container of the user with this slug.
func (s *Spawner) ContainerName(slug string) string { return s.cfg.NamePrefix + slug }

// VolumeName is the name of the volume of the user with this slug.
func (s *Spawner) VolumeName(slug string) string { return s.cfg.VolumePrefix + slug }

// validName is Docker's rule for container, volume and network names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Start removes the user's previous container, if any, and starts a new one from the image
// with the user's volume, the network, the limits and the environment. It returns once the
// container runs; readiness (HTTP) is the caller's to wait for.
func (s *Spawner) Start(ctx context.Context, spec spawner.Spec) (spawner.Handle, error) {
	if !validName.MatchString(spec.Slug) || spec.User == "" {
		return spawner.Handle{}, fmt.Errorf("docker: %q is not a valid resource name for user %q", spec.Slug, spec.User)
	}
	img, err := s.cli.ImageInspect(ctx, s.cfg.Image)
	if cerrdefs.IsNotFound(err) {
		return spawner.Handle{}, &imageNotFoundError{image: s.cfg.Image}
	}
	if err != nil {
		return spawner.Handle{}, fmt.Errorf("docker: inspect image %q: %w", s.cfg.Image, err)
	}
	name := s.ContainerName(spec.Slug)
	if err := s.removeOld(ctx, spec.User, name); err != nil {
		return spawner.Handle{}, err
	}
	vol := s.VolumeName(spec.Slug)
	if err := s.ensureVolume(ctx, spec.User, vol, imageUser(img.Config)); err != nil {
		return spawner.Handle{}, err
	}

	env := map[string]string{}
	maps.Copy(env, s.cfg.Env)
	maps.Copy(env, spec.Env)
	// jupyterhub-singleuser takes its bind address from the service URL; the hub uses the
	// container's address, which is only known once it runs.
	env["JUPYTERHUB_SERVICE_URL"] = "http://0.0.0.0:" + strconv.Itoa(Port) + spec.ServicePrefix
	envList := make([]string, 0, len(env))
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	created, err := s.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image:      s.cfg.Image,
			Env:        envList,
			WorkingDir: s.cfg.NotebookDir,
			Labels:     s.labels(spec.User),
		},
		HostConfig: &container.HostConfig{
			NetworkMode: container.NetworkMode(s.cfg.Network),
			// Without NoCopy, Docker copies the container's directory (the working directory it
			// creates as root) into an empty volume, owner included, and the server cannot write.
			Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: vol, Target: s.cfg.NotebookDir,
				VolumeOptions: &mount.VolumeOptions{NoCopy: true}}},
			Resources: container.Resources{
				Memory:   s.cfg.MemoryLimit,
				NanoCPUs: int64(s.cfg.CPULimit * 1e9),
			},
			SecurityOpt: []string{"no-new-privileges:true"},
		},
	})
	if err != nil {
		return spawner.Handle{}, fmt.Errorf("docker: create container %s: %w", name, err)
	}
	// From here on a failure, or the caller giving up, must not leave the container behind.
	fail := func(err error) (spawner.Handle, error) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		s.cli.ContainerRemove(cctx, created.ID, client.ContainerRemoveOptions{Force: true})
		return spawner.Handle{}, err
	}
	if _, err := s.cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return fail(fmt.Errorf("docker: start container %s: %w", name, err))
	}
	h, _, err := s.handle(ctx, created.ID)
	if err != nil {
		return fail(err)
	}
	return h, nil
}

// handle inspects a running container and returns its handle (its address on the network) and
// when it started.
func (s *Spawner) handle(ctx context.Context, id string) (spawner.Handle, time.Time, error) {
	res, err := s.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return spawner.Handle{}, time.Time{}, fmt.Errorf("docker: inspect container %s: %w", shortID(id), err)
	}
	c := res.Container
	if c.State == nil || !c.State.Running {
		return spawner.Handle{}, time.Time{}, fmt.Errorf("%w: %s", spawner.ErrStopped, s.stoppedReason(ctx, c))
	}
	var ep *network.EndpointSettings
	if c.NetworkSettings != nil {
		ep = c.NetworkSettings.Networks[s.cfg.Network]
	}
	if ep == nil || !ep.IPAddress.IsValid() {
		return spawner.Handle{}, time.Time{}, fmt.Errorf("docker: container %s has no address on network %s", shortID(id), s.cfg.Network)
	}
	started, _ := time.Parse(time.RFC3339Nano, c.State.StartedAt)
	return spawner.Handle{ID: c.ID, URL: "http://" + net.JoinHostPort(ep.IPAddress.String(), strconv.Itoa(Port))}, started, nil
}

// Stop stops the container (SIGTERM, then SIGKILL after 10 seconds) and removes it. The
// user's volume stays.
func (s *Spawner) Stop(ctx context.Context, h spawner.Handle) error {
	if h.ID == "" {
		return nil
	}
	timeout := 10
	_, err := s.cli.ContainerStop(ctx, h.ID, client.ContainerStopOptions{Timeout: &timeout})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("docker: stop container %s: %w", shortID(h.ID), err)
	}
	return s.remove(ctx, h.ID)
}

// Poll returns nil while the container runs. Once it has stopped, the error wraps
// spawner.ErrStopped and tells the state, the exit code and the last lines the server printed.
func (s *Spawner) Poll(ctx context.Context, h spawner.Handle) error {
	res, err := s.cli.ContainerInspect(ctx, h.ID, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("%w: the container was removed", spawner.ErrStopped)
	}
	if err != nil {
		// The daemon being unreachable says nothing about the server.
		return nil
	}
	c := res.Container
	if c.State != nil && c.State.Running {
		return nil
	}
	return fmt.Errorf("%w: %s", spawner.ErrStopped, s.stoppedReason(ctx, c))
}

// stoppedReason explains a container that is not running.
func (s *Spawner) stoppedReason(ctx context.Context, c container.InspectResponse) string {
	var b strings.Builder
	b.WriteString("the container ")
	if c.State == nil {
		b.WriteString("has no state")
	} else {
		fmt.Fprintf(&b, "is %s (exit code %d", c.State.Status, c.State.ExitCode)
		if c.State.OOMKilled {
			b.WriteString(", out of memory")
		}
		if c.State.Error != "" {
			b.WriteString(", " + c.State.Error)
		}
		b.WriteString(")")
	}
	if tail := s.lastLines(ctx, c.ID, 5); tail != "" {
		b.WriteString(": " + tail)
	}
	return b.String()
}

// lastLines returns the container's last n lines of output joined by " | ".
func (s *Spawner) lastLines(ctx context.Context, id string, n int) string {
	rc, err := s.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(n)})
	if err != nil {
		return ""
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, io.LimitReader(rc, 64<<10)); err != nil && out.Len() == 0 {
		return ""
	}
	var lines []string
	for l := range strings.SplitSeq(out.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, " | ")
}

// removeOld removes the user's previous container: the one with the user's label and the one
// with the user's name, refusing to touch a container of that name that another hub owns.
func (s *Spawner) removeOld(ctx context.Context, user, name string) error {
	res, err := s.cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("docker: inspect container %s: %w", name, err)
	case res.Container.Config == nil || res.Container.Config.Labels[LabelHub] != s.cfg.HubID:
		return fmt.Errorf("docker: container name %s is taken by a container this hub (%s) did not create", name, s.cfg.HubID)
	default:
		if err := s.remove(ctx, res.Container.ID); err != nil {
			return err
		}
	}
	list, err := s.cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", LabelHub+"="+s.cfg.HubID, LabelUser+"="+user),
	})
	if err != nil {
		return fmt.Errorf("docker: list containers: %w", err)
	}
	for _, c := range list.Items {
		if err := s.remove(ctx, c.ID); err != nil {
			return err
		}
	}
	return nil
}

// remove force-removes a container, keeping its named volumes; a missing container is fine.
func (s *Spawner) remove(ctx context.Context, id string) error {
	_, err := s.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
	if err == nil || cerrdefs.IsNotFound(err) || cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in progress") {
		return nil
	}
	return fmt.Errorf("docker: remove container %s: %w", shortID(id), err)
}

func (s *Spawner) labels(user string) map[string]string {
	return map[string]string{LabelHub: s.cfg.HubID, LabelUser: user}
}

// ensureVolume creates the user's volume the first time. A new volume's root belongs to root
// (the server's mount never copies the image's directory into it): a short-lived container
// hands it to the image's user so the server can write to it.
func (s *Spawner) ensureVolume(ctx context.Context, user, vol, owner string) error {
	_, err := s.cli.VolumeInspect(ctx, vol, client.VolumeInspectOptions{})
	if err == nil {
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("docker: inspect volume %s: %w", vol, err)
	}
	if _, err := s.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: vol, Labels: s.labels(user)}); err != nil {
		return fmt.Errorf("docker: create volume %s: %w", vol, err)
	}
	if owner == "" || owner == "root" || owner == "0" {
		return nil
	}
	const dir = "/ohtkhub-volume"
	created, err := s.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{
			Image:      s.cfg.Image,
			User:       "0",
			Entrypoint: []string{"/bin/sh", "-c", `chown "$1:" "$2" 2>/dev/null || chown "$1" "$2"`, "sh", owner, dir},
			Labels:     map[string]string{LabelHub: s.cfg.HubID, LabelRole: "volume-init"},
		},
		HostConfig: &container.HostConfig{
			NetworkMode: "none",
			Mounts:      []mount.Mount{{Type: mount.TypeVolume, Source: vol, Target: dir, VolumeOptions: &mount.VolumeOptions{NoCopy: true}}},
		},
	})
	if err != nil {
		return fmt.Errorf("docker: prepare volume %s: %w", vol, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		s.cli.ContainerRemove(cctx, created.ID, client.ContainerRemoveOptions{Force: true})
	}()
	wait := s.cli.ContainerWait(ctx, created.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := s.cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("docker: prepare volume %s: %w", vol, err)
	}
	select {
	case r := <-wait.Result:
		if r.StatusCode != 0 {
			return fmt.Errorf("docker: prepare volume %s: chown to %s failed (exit code %d): %s", vol, owner, r.StatusCode, s.lastLines(ctx, created.ID, 3))
		}
		return nil
	case err := <-wait.Error:
		return fmt.Errorf("docker: prepare volume %s: %w", vol, err)
	}
}

// imageUser is the user the image's processes run as.
func imageUser(cfg *dockerspec.DockerOCIImageConfig) string {
	if cfg == nil {
		return ""
	}
	return cfg.User
}

// ensureNetwork creates the network if it is missing and returns its gateway address.
func (s *Spawner) ensureNetwork(ctx context.Context) (netip.Addr, error) {
	res, err := s.cli.NetworkInspect(ctx, s.cfg.Network, client.NetworkInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		_, err = s.cli.NetworkCreate(ctx, s.cfg.Network, client.NetworkCreateOptions{
			Driver: "bridge",
			Labels: map[string]string{LabelHub: s.cfg.HubID},
		})
		if err != nil && !cerrdefs.IsConflict(err) {
			return netip.Addr{}, fmt.Errorf("docker: create network %s: %w", s.cfg.Network, err)
		}
		res, err = s.cli.NetworkInspect(ctx, s.cfg.Network, client.NetworkInspectOptions{})
	}
	if err != nil {
		return netip.Addr{}, fmt.Errorf("docker: inspect network %s: %w", s.cfg.Network, err)
	}
	n := res.Network
	if n.Driver != "bridge" {
		return netip.Addr{}, fmt.Errorf("docker: network %s has driver %q; a user-defined bridge network is needed", s.cfg.Network, n.Driver)
	}
	for _, c := range n.IPAM.Config {
		if c.Gateway.Is4() {
			return c.Gateway, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("docker: network %s has no IPv4 gateway", s.cfg.Network)
}

// connectSelf connects the container this process runs in to the network and returns its
// address there.
func (s *Spawner) connectSelf(ctx context.Context) (netip.Addr, error) {
	self, err := os.Hostname()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("docker: %w", err)
	}
	res, err := s.cli.ContainerInspect(ctx, self, client.ContainerInspectOptions{})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("docker: connect_to_network: this process does not run in a container of this daemon (host name %q): %w", self, err)
	}
	if res.Container.NetworkSettings == nil || res.Container.NetworkSettings.Networks[s.cfg.Network] == nil {
		_, err := s.cli.NetworkConnect(ctx, s.cfg.Network, client.NetworkConnectOptions{Container: res.Container.ID})
		if err != nil && !cerrdefs.IsConflict(err) {
			return netip.Addr{}, fmt.Errorf("docker: connect this container to network %s: %w", s.cfg.Network, err)
		}
		if res, err = s.cli.ContainerInspect(ctx, self, client.ContainerInspectOptions{}); err != nil {
			return netip.Addr{}, fmt.Errorf("docker: %w", err)
		}
	}
	ep := res.Container.NetworkSettings.Networks[s.cfg.Network]
	if ep == nil || !ep.IPAddress.IsValid() {
		return netip.Addr{}, fmt.Errorf("docker: this container has no address on network %s", s.cfg.Network)
	}
	return ep.IPAddress, nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

type imageNotFoundError struct{ image string }

func (e *imageNotFoundError) Error() string {
	return fmt.Sprintf("image %q not found: build it with images/notebook/build.sh", e.image)
}

func (e *imageNotFoundError) Unwrap() error { return ErrImageNotFound }
