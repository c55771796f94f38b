// Command composecheck loads a compose file the way the deploy tools do and prints the
// resulting model as JSON, so tests can validate stack.yml without a Docker engine.
//
//	composecheck swarm FILE    docker/cli's stack loader: what `docker stack deploy` runs
//	composecheck compose FILE  compose-go's loader: what `docker compose` runs
//
// Both interpolate ${VARS} from the environment and validate against their schema; a
// failure exits 1 with the loader's message on stderr.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/docker/cli/cli/compose/loader"
	stacktypes "github.com/docker/cli/cli/compose/types"
)

type swarmResult struct {
	Config *stacktypes.Config `json:"config"`
	// Keys `docker stack deploy` would ignore with a warning.
	Unsupported []string          `json:"unsupported"`
	Deprecated  map[string]string `json:"deprecated"`
}

func environment() map[string]string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if name, value, ok := strings.Cut(kv, "="); ok {
			env[name] = value
		}
	}
	return env
}

func loadSwarm(path string) (any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dict, err := loader.ParseYAML(data)
	if err != nil {
		return nil, err
	}
	config, err := loader.Load(stacktypes.ConfigDetails{
		WorkingDir:  filepath.Dir(path),
		ConfigFiles: []stacktypes.ConfigFile{{Filename: path, Config: dict}},
		Environment: environment(),
	})
	if err != nil {
		return nil, err
	}
	unsupported := loader.GetUnsupportedProperties(dict)
	sort.Strings(unsupported)
	return swarmResult{config, unsupported, loader.GetDeprecatedProperties(dict)}, nil
}

func loadCompose(path string) (any, error) {
	options, err := cli.NewProjectOptions(
		[]string{path},
		cli.WithName("erp"),
		cli.WithOsEnv,
		cli.WithWorkingDirectory(filepath.Dir(path)),
	)
	if err != nil {
		return nil, err
	}
	return options.LoadProject(context.Background())
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: composecheck swarm|compose FILE")
		os.Exit(2)
	}
	load := map[string]func(string) (any, error){"swarm": loadSwarm, "compose": loadCompose}[os.Args[1]]
	if load == nil {
		fmt.Fprintf(os.Stderr, "unknown mode %q (swarm or compose)\n", os.Args[1])
		os.Exit(2)
	}
	model, err := load(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out, err := json.MarshalIndent(model, "", "  ")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(string(out))
}
