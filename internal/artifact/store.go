package artifact

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path"
	"strings"
	"time"
)

// Timeouts of Store.Serve.
const (
	// readHeaderTimeout bounds how long a client may take to send its
	// request's headers (slowloris).
	readHeaderTimeout = 10 * time.Second
	// shutdownTimeout bounds how long the downloads in flight may take
	// to finish once the store stops; after it they are cut.
	shutdownTimeout = 10 * time.Second
)

// Store is an artifact store: it serves the regular files of Dir,
// read-only, over plain HTTP. A package's URL is the store's base URL
// followed by the file's path under Dir.
type Store struct {
	Dir string
}

// Handler serves the files of s.Dir to GET and HEAD (405 for other
// methods). A directory, a dotfile (Build's and Fetch's temporary files
// are dotfiles: not packages yet), a special file or a path outside Dir,
// through a symlink or otherwise, is 404: there is no listing.
func (s *Store) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the artifact store is read-only", http.StatusMethodNotAllowed)
			return
		}
		name, ok := storeName(r.URL.Path)
		if !ok {
			http.NotFound(w, r)
			return
		}
		s.serveFile(w, r, name)
	})
}

// storeName is the path under the store's directory that urlPath names,
// if it names a file that may be served.
func storeName(urlPath string) (string, bool) {
	name := strings.TrimPrefix(path.Clean("/"+urlPath), "/")
	if name == "" {
		return "", false
	}
	for part := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(part, ".") {
			return "", false
		}
	}
	return name, true
}

// serveFile serves the regular file name of s.Dir.
func (s *Store) serveFile(w http.ResponseWriter, r *http.Request, name string) {
	// os.Root refuses any path, symlinks included, that resolves outside
	// the store's directory.
	root, err := os.OpenRoot(s.Dir)
	if err != nil {
		http.Error(w, "artifact store: its directory cannot be opened", http.StatusInternalServerError)
		return
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil { // missing, unreadable or outside: all the same to a client
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	http.ServeContent(w, r, name, fi.ModTime(), f)
}

// Serve serves s.Handler on ln until ctx ends, then shuts down
// gracefully: ln closes at once, the downloads in flight have
// shutdownTimeout to finish. It returns nil after a shutdown that ctx
// asked for, and the error otherwise.
func (s *Store) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: readHeaderTimeout}
	shutdown := make(chan error, 1)
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		shutdown <- srv.Shutdown(sctx)
	})
	err := srv.Serve(ln)
	if stop() { // ctx has not ended: Serve failed on its own
		return fmt.Errorf("artifact store on %s: %w", ln.Addr(), err)
	}
	if err := <-shutdown; err != nil {
		_ = srv.Close()
		return fmt.Errorf("artifact store on %s: stopping: %w", ln.Addr(), err)
	}
	return nil
}
