"""Static checks of the deployments: images, stack.yml and the Kubernetes manifests."""
