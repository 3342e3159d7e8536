// Command backend is the stand-in MCP server for bench/load.sh: it answers
// every POST with the same small JSON-RPC result, like a tools/call response.
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"strconv"
)

const result = `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"42 results"}],"isError":false}}`

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	body := []byte(result)
	clen := strconv.Itoa(len(body))
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{clen}
		_, _ = w.Write(body)
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
