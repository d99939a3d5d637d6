package docker

import (
	"context"
	"errors"
	"fmt"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/ohtkhub/ohtkhub/internal/spawner"
)

// List returns the hub's running containers, for the hub to adopt at start, and removes the
// hub's containers that are no longer running (their volumes stay). Containers of other hubs
// (another HubID) are not touched.
func (s *Spawner) List(ctx context.Context) ([]spawner.Running, error) {
	list, err := s.cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", LabelHub+"="+s.cfg.HubID),
	})
	if err != nil {
		return nil, fmt.Errorf("docker: list containers: %w", err)
	}
	var running []spawner.Running
	var errs []error
	for _, c := range list.Items {
		user := c.Labels[LabelUser]
		if c.Labels[LabelRole] != "" {
			// A helper of a spawn in progress; only leftovers of a crash are removed.
			if c.State != container.StateRunning {
				if err := s.remove(ctx, c.ID); err != nil {
					errs = append(errs, err)
				}
			}
			continue
		}
		h, started, err := s.handle(ctx, c.ID)
		if errors.Is(err, spawner.ErrStopped) || err == nil && user == "" {
			if err := s.remove(ctx, c.ID); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		running = append(running, spawner.Running{User: user, Handle: h, Started: started})
	}
	return running, errors.Join(errs...)
}
