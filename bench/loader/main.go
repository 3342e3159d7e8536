// Command loader sends one JSON-RPC POST per token in a file (each token
// exactly once), a few at a time, and prints the status-code counts. The
// load script uses it to fill mcp_auth's token cache.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

const body = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{"query":"bench"}}}`

func main() {
	url := flag.String("url", "", "target URL")
	file := flag.String("tokens", "", "file with one token per line")
	conc := flag.Int("c", 4, "concurrent requests")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("loader: ")
	f, err := os.Open(*file)
	if err != nil {
		log.Fatal(err)
	}
	var toks []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		if t := strings.TrimSpace(sc.Text()); t != "" {
			toks = append(toks, t)
		}
	}
	if err := sc.Err(); err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *conc}}
	var (
		mu     sync.Mutex
		counts = map[string]int{}
		wg     sync.WaitGroup
		next   = make(chan string)
	)
	start := time.Now()
	for range *conc {
		wg.Go(func() {
			for tok := range next {
				req, _ := http.NewRequest(http.MethodPost, *url, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+tok)
				status := "error"
				if resp, err := client.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = fmt.Sprint(resp.StatusCode)
				}
				mu.Lock()
				counts[status]++
				mu.Unlock()
			}
		})
	}
	for _, t := range toks {
		next <- t
	}
	close(next)
	wg.Wait()
	var keys []string
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, counts[k]))
	}
	fmt.Printf("sent %d requests in %.1fs: %s\n", len(toks), time.Since(start).Seconds(), strings.Join(parts, " "))
}
