#include <fcntl.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <filesystem>

#include "common/store.h"
#include "tests/support/temp_dir.h"

using namespace layerswarm;
using namespace std::chrono_literals;
using layerswarm::test::FakeClock;
using layerswarm::test::TempDir;

namespace {

std::unique_ptr<Store> open_store(const TempDir& dir, const Clock& clock) {
  auto s = Store::open(StoreOptions{dir.path() + "/store", 10min}, clock);
  REQUIRE(s);
  return std::move(*s);
}

Digest put_blob(Store& store, const std::string& bytes) {
  const Digest d = Digest::sha256_of(bytes);
  auto temp = store.create_temp(d);
  REQUIRE(temp);
  REQUIRE(::write(temp->fd.get(), bytes.data(), bytes.size()) ==
          static_cast<ssize_t>(bytes.size()));
  REQUIRE(store.commit_blob(*temp, d, bytes.size()));
  return d;
}

std::string read_fd(int fd, std::size_t n) {
  std::string out(n, '\0');
  REQUIRE(::pread(fd, out.data(), n, 0) == static_cast<ssize_t>(n));
  return out;
}

}  // namespace

TEST_CASE("blobs are committed by rename and read back", "[unit][store]") {
  TempDir dir;
  FakeClock clock;
  auto store = open_store(dir, clock);
  const Digest d = put_blob(*store, "hello blob");
  auto blob = store->open_blob(d);
  REQUIRE(blob);
  CHECK(blob->size == 10);
  CHECK(read_fd(blob->fd.get(), 10) == "hello blob");
  CHECK(std::filesystem::exists(store->blob_path(d)));
  CHECK(store->blob_size(d) == 10u);
  CHECK(std::filesystem::is_empty(dir.path() + "/store/tmp"));

  const Digest other = Digest::sha256_of("absent");
  auto missing = store->open_blob(other);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == make_error_code(Errc::kBlobUnknown));
}

TEST_CASE("an uncommitted download leaves nothing behind", "[unit][store]") {
  TempDir dir;
  FakeClock clock;
  auto store = open_store(dir, clock);
  const Digest d = Digest::sha256_of("x");
  {
    auto temp = store->create_temp(d);
    REQUIRE(temp);
    CHECK(std::filesystem::exists(temp->path));
  }
  CHECK(std::filesystem::is_empty(dir.path() + "/store/tmp"));
  CHECK_FALSE(store->open_blob(d));
}

TEST_CASE("a blob whose file vanished or changed size is dropped", "[unit][store]") {
  TempDir dir;
  FakeClock clock;
  auto store = open_store(dir, clock);
  const Digest gone = put_blob(*store, "gone");
  const Digest cut = put_blob(*store, "cut short");
  std::filesystem::remove(store->blob_path(gone));
  std::filesystem::resize_file(store->blob_path(cut), 3);
  CHECK_FALSE(store->open_blob(gone));
  CHECK_FALSE(store->open_blob(cut));
  CHECK_FALSE(store->blob_size(cut));
  CHECK_FALSE(std::filesystem::exists(store->blob_path(cut)));
}

TEST_CASE("manifests and tags", "[unit][store]") {
  TempDir dir;
  FakeClock clock;
  auto store = open_store(dir, clock);
  const std::string bytes = R"({"schemaVersion":2})";
  const Digest d = Digest::sha256_of(bytes);
  REQUIRE(store->put_manifest(d, "application/vnd.oci.image.manifest.v1+json", bytes));
  auto m = store->get_manifest(d);
  REQUIRE(m);
  CHECK(m->bytes == bytes);
  CHECK(m->media_type == "application/vnd.oci.image.manifest.v1+json");
  CHECK_FALSE(store->open_blob(d));  // a manifest is not a blob

  CHECK_FALSE(store->get_tag("docker.io", "library/x", "v1"));
  REQUIRE(store->put_tag("docker.io", "library/x", "v1",
                         TagRecord{d, m->media_type, bytes.size(), clock.now()}));
  auto t = store->get_tag("docker.io", "library/x", "v1");
  REQUIRE(t);
  CHECK(t->digest == d);
  CHECK(t->validated == clock.now());
  CHECK_FALSE(store->get_tag("ghcr.io", "library/x", "v1"));  // tags are per registry
  REQUIRE(store->delete_tag("docker.io", "library/x", "v1"));
  CHECK_FALSE(store->get_tag("docker.io", "library/x", "v1"));
}

TEST_CASE("a tag or manifest read from memory follows every change of the index", "[unit][store]") {
  TempDir dir;
  FakeClock clock;
  auto store = open_store(dir, clock);
  const std::string one = R"({"schemaVersion":2,"n":1})";
  const std::string two = R"({"schemaVersion":2,"n":2})";
  const Digest d1 = Digest::sha256_of(one), d2 = Digest::sha256_of(two);
  REQUIRE(store->put_manifest(d1, "application/vnd.oci.image.manifest.v1+json", one));
  REQUIRE(store->put_manifest(d2, "application/vnd.oci.image.index.v1+json", two));
  REQUIRE(store->put_tag("r", "n", "v", TagRecord{d1, "t", one.size(), clock.now()}));
  // Read twice: the second answer comes from memory, and is the same.
  for (int i = 0; i < 2; ++i) {
    auto t = store->get_tag("r", "n", "v");
    REQUIRE(t);
    CHECK(t->digest == d1);
    auto m = store->get_manifest(d1);
    REQUIRE(m);
    CHECK(m->bytes == one);
  }
  SECTION("a tag moved to another digest") {
    clock.advance(1min);
    REQUIRE(store->put_tag("r", "n", "v", TagRecord{d2, "t", two.size(), clock.now()}));
    auto t = store->get_tag("r", "n", "v");
    REQUIRE(t);
    CHECK(t->digest == d2);
    CHECK(t->validated == clock.now());
  }
  SECTION("a tag deleted") {
    REQUIRE(store->delete_tag("r", "n", "v"));
    CHECK_FALSE(store->get_tag("r", "n", "v"));
  }
  SECTION("a manifest removed (the cache's DELETE)") {
    REQUIRE(store->remove(d1));
    CHECK_FALSE(store->get_manifest(d1));
    CHECK(store->get_manifest(d2));
  }
  SECTION("the TTL sweep") {
    clock.advance(std::chrono::hours(48));
    auto stats = store->sweep(clock.now() - 1h, clock.now() - 1h, 1000);
    REQUIRE(stats);
    CHECK(stats->tags == 1);
    CHECK(stats->manifests == 2);
    CHECK_FALSE(store->get_tag("r", "n", "v"));
    CHECK_FALSE(store->get_manifest(d1));
  }
  SECTION("an access recorded") {
    clock.advance(std::chrono::hours(1));
    store->touch(d1);
    auto m = store->get_manifest(d1);
    REQUIRE(m);
    CHECK(m->accessed_ms == to_unix_ms(clock.now()));
  }
  SECTION("a restart reads the index again") {
    store.reset();
    store = open_store(dir, clock);
    auto t = store->get_tag("r", "n", "v");
    REQUIRE(t);
    CHECK(t->digest == d1);
  }
}

TEST_CASE("the TTL sweep removes what was not used, file first", "[unit][store]") {
  TempDir dir;
  FakeClock clock;
  auto store = open_store(dir, clock);
  const Digest old_blob = put_blob(*store, "old");
  const std::string mbytes = "{}";
  const Digest old_manifest = Digest::sha256_of(mbytes);
  REQUIRE(store->put_manifest(old_manifest, "application/json", mbytes));
  REQUIRE(store->put_tag("r", "n", "old", TagRecord{old_manifest, "t", 2, clock.now()}));
  clock.advance(std::chrono::hours(24));
  const Digest used_blob = put_blob(*store, "used");
  clock.advance(std::chrono::hours(24));
  REQUIRE(store->put_tag("r", "n", "fresh", TagRecord{old_manifest, "t", 2, clock.now()}));

  // A read past the access granularity records a new last access.
  store->touch(used_blob);
  const TimePoint cutoff = clock.now() - std::chrono::hours(36);
  auto stats = store->sweep(cutoff, cutoff, 1000);
  REQUIRE(stats);
  CHECK(stats->blobs == 1);
  CHECK(stats->manifests == 1);
  CHECK(stats->tags == 1);
  CHECK(stats->bytes == 3 + 2);
  CHECK_FALSE(std::filesystem::exists(store->blob_path(old_blob)));
  CHECK_FALSE(store->open_blob(old_blob));
  CHECK_FALSE(store->get_manifest(old_manifest));
  CHECK(store->open_blob(used_blob));
  CHECK_FALSE(store->get_tag("r", "n", "old"));
  CHECK(store->get_tag("r", "n", "fresh"));

  // An access moves the blob's expiry.
  clock.advance(std::chrono::hours(24));
  store->touch(used_blob);
  auto again =
      store->sweep(clock.now() - std::chrono::hours(1), clock.now() - std::chrono::hours(1), 1000);
  REQUIRE(again);
  CHECK(again->blobs == 0);
  CHECK(store->open_blob(used_blob));
}

TEST_CASE("a restart keeps the cache and clears interrupted downloads", "[unit][store]") {
  TempDir dir;
  FakeClock clock;
  Digest d = Digest::sha256_of("persist");
  {
    auto store = open_store(dir, clock);
    d = put_blob(*store, "persist");
    REQUIRE(store->put_tag("r", "n", "t", TagRecord{d, "x", 7, clock.now()}));
    auto temp = store->create_temp(d);
    REQUIRE(temp);
    temp->path.clear();  // as if the process died mid-download
  }
  auto store = open_store(dir, clock);
  auto blob = store->open_blob(d);
  REQUIRE(blob);
  CHECK(read_fd(blob->fd.get(), 7) == "persist");
  CHECK(store->get_tag("r", "n", "t"));
  CHECK(std::filesystem::is_empty(dir.path() + "/store/tmp"));
}

TEST_CASE("a blob's extra record lives and dies with the blob", "[unit][store]") {
  TempDir dir;
  FakeClock clock;
  auto store = open_store(dir, clock);
  const Digest absent = Digest::sha256_of("absent");
  CHECK_FALSE(store->put_extra(absent, "x"));
  const Digest old_blob = put_blob(*store, "old");
  const std::string binary("chunk\0metainfo", 14);
  REQUIRE(store->put_extra(old_blob, binary));
  clock.advance(std::chrono::hours(24));
  const Digest kept = put_blob(*store, "kept");
  REQUIRE(store->put_extra(kept, "k"));
  auto extras = store->extras();
  REQUIRE(extras.size() == 2);
  CHECK(((extras[0].first == old_blob && extras[0].second == binary) ||
         (extras[1].first == old_blob && extras[1].second == binary)));

  const TimePoint cutoff = clock.now() - std::chrono::hours(1);
  REQUIRE(store->sweep(cutoff, cutoff, 1000));
  extras = store->extras();
  REQUIRE(extras.size() == 1);
  CHECK(extras[0].first == kept);
  CHECK(extras[0].second == "k");
}

TEST_CASE("a blob committed with its extra record has it from the same index write",
          "[unit][store]") {
  TempDir dir;
  FakeClock clock;
  const std::string bytes = "sized in small chunks";
  const Digest d = Digest::sha256_of(bytes);
  {
    auto store = open_store(dir, clock);
    auto temp = store->create_temp(d);
    REQUIRE(temp);
    REQUIRE(::write(temp->fd.get(), bytes.data(), bytes.size()) ==
            static_cast<ssize_t>(bytes.size()));
    REQUIRE(store->commit_blob(*temp, d, bytes.size(), R"({"chunk_size":262144})"));
    CHECK(store->get_extra(d) == std::optional<std::string>(R"({"chunk_size":262144})"));
  }
  // Reopened (a restart): the record is there with the blob.
  auto store = open_store(dir, clock);
  REQUIRE(store->blob_size(d) == bytes.size());
  CHECK(store->get_extra(d) == std::optional<std::string>(R"({"chunk_size":262144})"));
  // Committed without one: none.
  const Digest plain = put_blob(*store, "no record");
  CHECK_FALSE(store->get_extra(plain));
}

TEST_CASE("eviction removes least recently used blobs first, never held or pinned ones",
          "[unit][store][lifecycle]") {
  TempDir dir;
  FakeClock clock;
  auto store = open_store(dir, clock);
  const std::string kb(1000, 'x');
  std::vector<Digest> blobs;
  for (char c = 'a'; c <= 'f'; ++c) {
    blobs.push_back(put_blob(*store, std::string(1, c) + kb));  // 1001 bytes each
    clock.advance(std::chrono::hours(1));
  }
  const std::string mbytes = R"({"schemaVersion":2})";
  REQUIRE(store->put_manifest(Digest::sha256_of(mbytes), "application/json", mbytes));
  CHECK(store->used_bytes() == 6 * 1001 + mbytes.size());
  // a is used again (the newest now); b is being served; c is pinned.
  store->touch(blobs[0]);
  Store::Hold hold = store->hold(blobs[1]);
  store->set_pinned({blobs[2]});

  auto stats = store->evict(3 * 1001 + mbytes.size(), 100);
  REQUIRE(stats);
  CHECK(stats->blobs == 3);
  CHECK(stats->bytes == 3 * 1001);
  CHECK(stats->skipped == 2);
  // Oldest first, skipping b (held) and c (pinned): d, e, f went; a stayed (used last).
  CHECK(store->blob_size(blobs[0]));
  CHECK(store->blob_size(blobs[1]));
  CHECK(store->blob_size(blobs[2]));
  for (int i = 3; i < 6; ++i) {
    CHECK_FALSE(store->blob_size(blobs[static_cast<std::size_t>(i)]));
    CHECK_FALSE(std::filesystem::exists(store->blob_path(blobs[static_cast<std::size_t>(i)])));
  }
  CHECK(store->get_manifest(Digest::sha256_of(mbytes)));  // manifests stay
  CHECK(store->used_bytes() == 3 * 1001 + mbytes.size());

  // Released and unpinned, b and c go before a.
  hold = Store::Hold();
  store->set_pinned({});
  auto more = store->evict(1001 + mbytes.size(), 100);
  REQUIRE(more);
  CHECK(more->blobs == 2);
  CHECK(store->blob_size(blobs[0]));
  CHECK_FALSE(store->blob_size(blobs[1]));
  CHECK_FALSE(store->blob_size(blobs[2]));

  // What a restart counts is what is there.
  store.reset();
  store = open_store(dir, clock);
  CHECK(store->used_bytes() == 1001 + mbytes.size());
}

TEST_CASE("a cached file changed after it was stored is quarantined, not served",
          "[unit][store][lifecycle]") {
  TempDir dir;
  FakeClock clock;
  auto store = open_store(dir, clock);
  int quarantined = 0;
  store->on_quarantine([&] { ++quarantined; });
  const Digest d = put_blob(*store, "precious bytes");
  REQUIRE(store->open_blob(d));
  {
    // One byte flipped in place: same size, same inode.
    UniqueFd fd(::open(store->blob_path(d).c_str(), O_WRONLY));
    REQUIRE(fd);
    REQUIRE(::pwrite(fd.get(), "P", 1, 0) == 1);
  }
  auto blob = store->open_blob(d);
  REQUIRE_FALSE(blob);
  CHECK(blob.error().code == make_error_code(Errc::kBlobUnknown));
  CHECK(quarantined == 1);
  CHECK_FALSE(store->blob_size(d));
  CHECK_FALSE(std::filesystem::exists(store->blob_path(d)));
  CHECK_FALSE(std::filesystem::is_empty(dir.path() + "/store/quarantine"));
  CHECK(store->used_bytes() == 0);
}

TEST_CASE("a file written to while it is committed is quarantined, not recorded as verified",
          "[unit][store][lifecycle]") {
  TempDir dir;
  FakeClock clock;
  StoreOptions options{dir.path() + "/store", 10min};
  std::string_view write_at_commit;  // what the hook writes into the renamed file ("" nothing)
  int hook_runs = 0;
  options.after_rename = [&](const std::string& path) {
    ++hook_runs;
    if (write_at_commit.empty()) return;
    UniqueFd fd(::open(path.c_str(), O_WRONLY));
    REQUIRE(fd);
    REQUIRE(::pwrite(fd.get(), write_at_commit.data(), write_at_commit.size(), 0) ==
            static_cast<ssize_t>(write_at_commit.size()));
  };
  auto opened = Store::open(options, clock);
  REQUIRE(opened);
  Store& store = **opened;
  int quarantined = 0;
  store.on_quarantine([&] { ++quarantined; });
  auto commit = [&](const std::string& bytes) {
    const Digest d = Digest::sha256_of(bytes);
    auto temp = store.create_temp(d);
    REQUIRE(temp);
    REQUIRE(::write(temp->fd.get(), bytes.data(), bytes.size()) ==
            static_cast<ssize_t>(bytes.size()));
    return std::make_pair(d, store.commit_blob(*temp, d, bytes.size()));
  };

  // Nothing written in the window: committed as usual.
  const auto [kept, ok] = commit("verified bytes");
  CHECK(ok);
  CHECK(hook_runs == 1);
  CHECK(store.open_blob(kept));

  // A byte changed between the rename and the identity's stat (same size, same inode).
  write_at_commit = "X";
  const auto [changed, refused] = commit("other verified bytes");
  CHECK(hook_runs == 2);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == make_error_code(Errc::kStorage));
  CHECK_THAT(refused.error().what(), Catch::Contains("changed while it was committed"));
  CHECK(quarantined == 1);
  CHECK_FALSE(store.blob_size(changed));
  CHECK_FALSE(store.open_blob(changed));
  CHECK_FALSE(std::filesystem::exists(store.blob_path(changed)));
  CHECK_FALSE(std::filesystem::is_empty(dir.path() + "/store/quarantine"));
  CHECK(store.used_bytes() == std::string_view("verified bytes").size());
}

TEST_CASE("a partial download survives a restart with its recorded length",
          "[unit][store][lifecycle]") {
  TempDir dir;
  FakeClock clock;
  const Digest d = Digest::sha256_of("0123456789abcdef");
  {
    auto store = open_store(dir, clock);
    auto p = store->open_partial(d);
    REQUIRE(p);
    CHECK(p->length == 0);
    REQUIRE(::pwrite(p->file.fd.get(), "0123456789", 10, 0) == 10);
    Store::record_progress(p->file, 8, 16u);  // two bytes written after the last record
    // The process dies: nothing is cleaned up.
  }
  {
    auto store = open_store(dir, clock);
    auto p = store->open_partial(d);
    REQUIRE(p);
    CHECK(p->length == 8);
    CHECK(p->size == 16u);
    CHECK(std::filesystem::file_size(p->file.path) == 8);  // truncated to what is trusted
    REQUIRE(::pwrite(p->file.fd.get(), "89abcdef", 8, 8) == 8);
    REQUIRE(store->commit_blob(p->file, d, 16));
    auto blob = store->open_blob(d);
    REQUIRE(blob);
    CHECK(read_fd(blob->fd.get(), 16) == "0123456789abcdef");
    CHECK(std::filesystem::is_empty(dir.path() + "/store/tmp"));
  }
  {
    // A discarded partial starts from zero.
    auto store = open_store(dir, clock);
    const Digest other = Digest::sha256_of("other");
    auto p = store->open_partial(other);
    REQUIRE(p);
    REQUIRE(::pwrite(p->file.fd.get(), "oth", 3, 0) == 3);
    Store::record_progress(p->file, 3, std::nullopt);
    Store::discard(p->file);
    auto again = store->open_partial(other);
    REQUIRE(again);
    CHECK(again->length == 0);
    CHECK_FALSE(again->size);
  }
}
