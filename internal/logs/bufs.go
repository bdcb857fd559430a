package logs

import "sync"

// Buffers of a batch's size (a MiB or so) for what lives only while a
// batch is handled: the body read from an agent, the slab Append hands to
// bbolt. Reusing them matters more than the copy they save: the logs of a
// busy container arrive at tens of MB/s, and allocating each batch's
// buffers anew had the garbage collector run (over the whole server's
// heap) as much CPU as storing the batches.
var batchBufs sync.Pool

// maxPooledBuf keeps an odd huge buffer from staying around.
const maxPooledBuf = 4 << 20

// getBuf returns an empty buffer with room for n bytes.
func getBuf(n int) *[]byte {
	if p, ok := batchBufs.Get().(*[]byte); ok && cap(*p) >= n {
		*p = (*p)[:0]
		return p
	}
	b := make([]byte, 0, n)
	return &b
}

// putBuf gives a buffer back; nothing may use it afterwards.
func putBuf(p *[]byte) {
	if cap(*p) <= maxPooledBuf {
		batchBufs.Put(p)
	}
}
