// appcheck prints appc 0.8.11's verdict on image manifests: the check that
// `actool validate` runs (schema.ImageManifest.UnmarshalJSON).
//
// Input: one base64-encoded manifest per line on stdin (base64 so that any
// bytes, invalid UTF-8 included, pass). Output: one line per manifest,
// "ok", "error MESSAGE" or "panic MESSAGE" (appc crashed: not accepted).
package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"os"
	"strings"

	"github.com/appc/spec/schema"
)

func verdict(document []byte) (result string) {
	defer func() {
		if r := recover(); r != nil {
			result = "panic " + oneLine(fmt.Sprint(r))
		}
	}()
	var manifest schema.ImageManifest
	if err := manifest.UnmarshalJSON(document); err != nil {
		return "error " + oneLine(err.Error())
	}
	return "ok"
}

func oneLine(text string) string {
	return strings.Join(strings.Fields(text), " ")
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		document, err := base64.StdEncoding.DecodeString(in.Text())
		if err != nil {
			fmt.Fprintln(out, "bad-input", err)
			continue
		}
		fmt.Fprintln(out, verdict(document))
	}
}
