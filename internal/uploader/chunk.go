package uploader

import (
	"fmt"
	"io"
	"mime/multipart"
	"strconv"
	"strings"
)

// chunkCount is how many chunks a file of size bytes makes. An empty file is one
// empty chunk, so that the server sees the upload and answers about its (missing) header.
func chunkCount(size, chunkSize int64) int64 {
	if size <= 0 {
		return 1
	}
	return (size-1)/chunkSize + 1 // not (size+chunkSize-1)/chunkSize, which can overflow
}

// chunkSpan is the offset and length of chunk i.
func chunkSpan(i, size, chunkSize int64) (off, n int64) {
	off = i * chunkSize
	n = max(min(chunkSize, size-off), 0)
	return off, n
}

// chunkForm is the multipart form of one chunk, without the chunk's bytes.
type chunkForm struct {
	fileName  string
	vehicleID string
	index     int32
	total     int32
}

// write writes the whole form to mw, copying exactly n bytes from content into the
// chunk part, and closes mw. The fields go first so a streaming server has them
// before the bytes.
func (f chunkForm) write(mw *multipart.Writer, content io.Reader, n int64) error {
	fields := [...][2]string{
		{"file_name", f.fileName},
		{"vehicle_id", f.vehicleID},
		{"chunk_index", strconv.Itoa(int(f.index))},
		{"total_chunks", strconv.Itoa(int(f.total))},
	}
	for _, kv := range fields {
		if err := mw.WriteField(kv[0], kv[1]); err != nil {
			return err
		}
	}
	// The part's file name is a fixed label: the real name travels in file_name,
	// and a name from disk could hold characters that break a header.
	part, err := mw.CreateFormFile("chunk", fmt.Sprintf("chunk-%d", f.index))
	if err != nil {
		return err
	}
	copied, err := io.Copy(part, content)
	if err != nil {
		return fmt.Errorf("read chunk %d: %w", f.index, err)
	}
	if copied != n {
		return fmt.Errorf("read chunk %d: got %d bytes, want %d: the file changed during the upload", f.index, copied, n)
	}
	return mw.Close()
}

// measure returns a boundary and the exact length of the form written with it for a
// chunk of n bytes. The form's framing does not depend on the chunk's bytes, so a dry
// run without them gives the length; a known length lets the server refuse an
// oversized chunk before reading it.
func (f chunkForm) measure(n int64) (boundary string, length int64, err error) {
	var c countingWriter
	mw := multipart.NewWriter(&c)
	if err := f.write(mw, strings.NewReader(""), 0); err != nil {
		return "", 0, err
	}
	return mw.Boundary(), c.n + n, nil
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
