package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"

	"google.golang.org/protobuf/proto"
)

// digest is the SHA-256 of a resource's deterministic wire bytes.
type digest [sha256.Size]byte

// versionHexLen is how many hex digits of a type's hash form its version.
const versionHexLen = 16

var deterministic = proto.MarshalOptions{Deterministic: true}

// String is the digest as a resource's version in xDS caches.
func (d digest) String() string { return hex.EncodeToString(d[:versionHexLen/2]) }

func digestOf(m proto.Message) (digest, error) {
	b, err := deterministic.Marshal(m)
	if err != nil {
		return digest{}, err
	}
	return sha256.Sum256(b), nil
}

// versionHash builds one type's version from its resources, added in name
// order, and the versions of types it depends on.
type versionHash struct{ h hash.Hash }

func newVersionHash() versionHash { return versionHash{h: sha256.New()} }

func (v versionHash) add(name string, sum digest) {
	v.h.Write([]byte(name))
	v.h.Write([]byte{0})
	v.h.Write(sum[:])
}

func (v versionHash) dependOn(version string) {
	v.h.Write([]byte(version))
	v.h.Write([]byte{0})
}

func (v versionHash) version() string {
	return hex.EncodeToString(v.h.Sum(nil))[:versionHexLen]
}
