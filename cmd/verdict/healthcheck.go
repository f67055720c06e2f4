package main

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
)

// readyPath is verdict's readiness endpoint.
const readyPath = "/health/ready"

// newHealthcheckCommand probes a running verdict, for container
// HEALTHCHECKs on images that have no curl.
func newHealthcheckCommand() *cobra.Command {
	var (
		addr    string
		rawURL  string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when a running verdict answers 200 on its readiness endpoint",
		Long: "healthcheck asks a running verdict's " + readyPath + " and exits 0 when it answers 200.\n" +
			"It probes --addr, which it reads like `verdict run --addr`: from VERDICT_ADDR, else\n" +
			"from the file of --config (or VERDICT_CONFIG), so a container started with either\n" +
			"probes the address verdict serves on (a\n" +
			"wildcard host such as 0.0.0.0 is probed on loopback). --url probes another URL; a\n" +
			"URL without a path probes " + readyPath + ".",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			target, err := healthcheckURL(addr, rawURL)
			if err != nil {
				return err
			}
			client := &http.Client{Timeout: timeout}
			resp, err := client.Get(target)
			if err != nil {
				return fmt.Errorf("healthcheck: %w", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("healthcheck: %s answered %s", target, resp.Status)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "ok")
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", defaultListenAddr, "address verdict serves on (also VERDICT_ADDR, or addr in the file of --config, as for verdict run)")
	cmd.Flags().StringVar(&rawURL, "url", "", "`URL` to probe instead of --addr's "+readyPath+" (a URL without a path probes "+readyPath+")")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Second, "how long to wait for the answer")
	bindRunConfig(cmd)
	return cmd
}

// healthcheckURL is the URL to probe: rawURL when given (with the readiness
// path when it has none), else the readiness endpoint at addr.
func healthcheckURL(addr, rawURL string) (string, error) {
	if rawURL == "" {
		return "http://" + probeHost(addr) + readyPath, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("--url %q: want an http or https URL such as http://127.0.0.1:8181%s", rawURL, readyPath)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = readyPath
	}
	return u.String(), nil
}
