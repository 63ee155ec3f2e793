// Command yamljson prints what Kubernetes makes of a YAML document, so the
// test suite can hold gitops-bot's own YAML reading to the real thing.
//
// Which functions, and why: the API server decodes a YAML request body with
// sigs.k8s.io/yaml.YAMLToJSON (k8s.io/apimachinery runtime/serializer/json,
// Serializer.Decode), the non-strict conversion: a repeated key keeps its last
// value. kubectl does the same on the client (cli-runtime's StreamVisitor
// decodes each document into a RawExtension through sigs.k8s.io/yaml.Unmarshal,
// which is YAMLToJSON with no target type) and sends the JSON. Under strict field
// validation (kubectl's default, --validate=strict) the API server also runs
// sigs.k8s.io/yaml.YAMLToJSONStrict over the same bytes and refuses the object
// when it fails: that is where repeated keys, including keys that only repeat
// once resolved (`on` and `yes` are both true), are refused. So this prints both.
//
// Input: one YAML document on stdin. Output: one JSON object on stdout,
//
//	{"json": <YAMLToJSON's output, verbatim>, "error": "...", "strict_error": "..."}
//
// with "json" absent when "error" is set. With -batch, stdin is a JSON array of
// YAML documents (strings) and stdout a JSON array of those objects, in order.
// With -version it prints the module versions it was built with.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"sigs.k8s.io/yaml"
)

type result struct {
	JSON        json.RawMessage `json:"json,omitempty"`
	Error       string          `json:"error,omitempty"`
	StrictError string          `json:"strict_error,omitempty"`
}

func convert(document []byte) result {
	var out result
	converted, err := yaml.YAMLToJSON(document)
	if err != nil {
		out.Error = err.Error()
	} else {
		out.JSON = converted
	}
	if _, err := yaml.YAMLToJSONStrict(document); err != nil {
		out.StrictError = err.Error()
	}
	return out
}

// convertSafely turns a panic inside the library into an error result: the
// batch goes on, and the caller sees which document did it.
func convertSafely(document []byte) (out result) {
	defer func() {
		if recovered := recover(); recovered != nil {
			out = result{Error: fmt.Sprintf("panic: %v", recovered), StrictError: "panic"}
		}
	}()
	return convert(document)
}

func versions() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	found := map[string]string{}
	for _, dep := range info.Deps {
		found[dep.Path] = dep.Version
	}
	var lines []string
	for _, path := range []string{"sigs.k8s.io/yaml", "go.yaml.in/yaml/v2"} {
		lines = append(lines, path+" "+found[path])
	}
	return strings.Join(lines, "\n")
}

func run(batch bool, stdin io.Reader, stdout io.Writer) error {
	input, err := io.ReadAll(stdin)
	if err != nil {
		return err
	}
	encoder := json.NewEncoder(stdout)
	if !batch {
		return encoder.Encode(convertSafely(input))
	}
	var documents []string
	if err := json.Unmarshal(input, &documents); err != nil {
		return fmt.Errorf("-batch wants a JSON array of strings on stdin: %w", err)
	}
	results := make([]result, len(documents))
	for i, document := range documents {
		results[i] = convertSafely([]byte(document))
	}
	return encoder.Encode(results)
}

func main() {
	batch := flag.Bool("batch", false, "read a JSON array of YAML documents, print an array of results")
	version := flag.Bool("version", false, "print the versions of sigs.k8s.io/yaml and go.yaml.in/yaml/v2")
	flag.Parse()
	if *version {
		fmt.Println(versions())
		return
	}
	if err := run(*batch, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "yamljson:", err)
		os.Exit(1)
	}
}
