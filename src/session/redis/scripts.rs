//! The Lua scripts of the Redis session store: each changes one user's keys (one hash tag,
//! one Cluster slot) atomically. Key layout and semantics: [`super`].

use ::redis::Script;

/// Extend a key's expiry to `at` (ms) unless it already lasts longer.
const KEEP_UNTIL: &str = r"
local function keep_until(key, at)
  local ttl = redis.call('PTTL', key)
  if ttl == -2 then return end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if ttl == -1 or now + ttl < tonumber(at) then
    redis.call('PEXPIREAT', key, at)
  end
end
";

/// KEYS: record, index. ARGV: hash, data, seen, idle, expires (ms), id.
const CREATE: &str = r"
redis.call('HSET', KEYS[1], 'hash', ARGV[1], 'data', ARGV[2], 'seen', ARGV[3], 'idle', ARGV[4])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
redis.call('SADD', KEYS[2], ARGV[6])
keep_until(KEYS[2], ARGV[5])
return 1
";

/// KEYS: record, index. ARGV: old hash, new hash, data, seen, idle, expires (ms).
const UPDATE: &str = r"
if redis.call('HGET', KEYS[1], 'hash') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'hash', ARGV[2], 'data', ARGV[3], 'seen', ARGV[4], 'idle', ARGV[5])
redis.call('PEXPIREAT', KEYS[1], ARGV[6])
keep_until(KEYS[2], ARGV[6])
return 1
";

/// KEYS: record, index. ARGV: seen, idle, expires (ms).
const TOUCH: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'seen', ARGV[1], 'idle', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
keep_until(KEYS[2], ARGV[3])
return 1
";

/// KEYS: record, index. ARGV: id. Returns the deleted record's token hash, or nil.
const DELETE: &str = r"
local h = redis.call('HGET', KEYS[1], 'hash')
redis.call('SREM', KEYS[2], ARGV[1])
if not h then return false end
redis.call('DEL', KEYS[1])
return h
";

/// KEYS: index. ARGV: record key base (`…{u:U}:s:`), id to keep ('' for none).
/// Records share the index's hash tag, hence its slot. Returns [id, hash, id, hash, …].
const DELETE_ALL: &str = r"
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if id ~= ARGV[2] then
    local rec = ARGV[1] .. id
    local h = redis.call('HGET', rec, 'hash')
    if h then
      redis.call('DEL', rec)
      table.insert(out, id)
      table.insert(out, h)
    end
    redis.call('SREM', KEYS[1], id)
  end
end
return out
";

/// KEYS: index. ARGV: record key base. Returns [data, seen, idle, …] of existing records and
/// prunes ids whose record expired.
const LIST: &str = r"
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local v = redis.call('HMGET', ARGV[1] .. id, 'data', 'seen', 'idle')
  if v[1] then
    table.insert(out, v[1])
    table.insert(out, v[2])
    table.insert(out, v[3])
  else
    redis.call('SREM', KEYS[1], id)
  end
end
return out
";

pub(super) struct Scripts {
    pub(super) create: Script,
    pub(super) update: Script,
    pub(super) touch: Script,
    pub(super) delete: Script,
    pub(super) delete_all: Script,
    pub(super) list: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        let with_helper = |body: &str| Script::new(&format!("{KEEP_UNTIL}{body}"));
        Scripts {
            create: with_helper(CREATE),
            update: with_helper(UPDATE),
            touch: with_helper(TOUCH),
            delete: Script::new(DELETE),
            delete_all: Script::new(DELETE_ALL),
            list: Script::new(LIST),
        }
    }
}
