@0x959e049ef8d37a37;
# The value model on the wire (DESIGN §3): everything that crosses a process
# or host boundary is a Value. Field numbers are append-only.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("joy::wire");

struct Value {
  union {
    null @0 :Void;
    bool @1 :Bool;
    int64 @2 :Int64;
    uint64 @3 :UInt64;
    float64 @4 :Float64;
    string @5 :Text;
    bytes @6 :Binary;
    list @7 :List(Value);
    map @8 :List(Entry);
    # Keys are unique; order is the sender's insertion order.
    ndarray @9 :NDArray;
    timestamp @10 :Int64;
    # Nanoseconds since the Unix epoch, UTC.
    function @11 :Function;
    error @12 :Error;
  }
}

struct Entry {
  key @0 :Text;
  value @1 :Value;
}

struct Binary {
  # Binary data travels by one of three arms; the receiver treats every arm's
  # contents as untrusted.
  union {
    inline @0 :Data;
    # At most 16 MiB; larger data must use shm or stream.
    shm @1 :SharedSlice;
    stream @2 :StreamedBytes;
  }
}

struct SharedSlice {
  # A slice of a shared-memory block from the sender's pre-faulted pool.
  block @0 :SharedMemory;
  offset @1 :UInt64;
  size @2 :UInt64;
}

interface SharedMemory {
  # Cap'n Proto 0.9 passes file descriptors only as capabilities: this
  # capability's server hands over the block's sealed memfd (Server::getFd).
  size @0 () -> (size :UInt64);
  stream @1 (offset :UInt64, size :UInt64) -> (source :ByteSource);
  # Those bytes of the block in chunks, for a holder that did not get the
  # descriptor: the capability crossed a link between hosts (a function's
  # result, say), or the holder must not map it.
}

struct StreamedBytes {
  # Data that cannot share memory (another host): the receiver hands its sink
  # to the source, which writes the bytes into it in chunks.
  size @0 :UInt64;
  source @1 :ByteSource;
}

interface ByteSource {
  pipeTo @0 (sink :ByteSink) -> ();
}

interface ByteSink {
  write @0 (chunk :Data) -> ();
  # An ordinary call, not `-> stream`: its answer tells the sender that the
  # chunk's message was written whole, so the message may point into the
  # sender's memory instead of a copy (runtime/value_codec.cpp, byte_pump).
  done @1 () -> ();
}

enum DType {
  # numpy's names; little-endian, C order.
  bool @0;
  int8 @1;
  uint8 @2;
  int16 @3;
  uint16 @4;
  int32 @5;
  uint32 @6;
  int64 @7;
  uint64 @8;
  float16 @9;
  float32 @10;
  float64 @11;
}

struct NDArray {
  dtype @0 :DType;
  shape @1 :List(UInt64);
  data @2 :Binary;
  typedArray @3 :Bool;
  # It came from a JavaScript typed array (1-D) and returns as one.
}

struct Function {
  # A function passed as a value: a capability, callable any number of times,
  # released when the last holder drops it.
  callable @0 :Callable;
  name @1 :Text;
  params @2 :List(Text);
  # Its parameters' names, when known.
}

interface Callable {
  call @0 (args :List(Value), kwargs :List(Entry)) -> (result :Result);
}

struct Error {
  code @0 :UInt16;
  # A joy::errc value; unknown codes read as `internal`.
  message @1 :Text;
  trace @2 :Text;
  # Stripped at trust boundaries.
}

struct Result {
  # Errors travel in band; a Cap'n Proto exception means a broken link.
  union {
    ok @0 :Value;
    err @1 :Error;
  }
}
