// The Lua scripts behind every state operation. Each runs atomically and touches only keys of
// one table, all of which share the table's hash tag. get/put/delete/increment receive every
// key they touch in KEYS; list and deleteTables also build entry keys from the table's entry
// prefix (ARGV), which Redis Cluster serves because they hash to the slot of the KEYS given.
//
// Replies are arrays whose first element says what happened, so expected outcomes (a conflict,
// a value that is not a number) are data, not error strings to parse.

// Time as the server sees it (scripts are replicated by effect, so TIME is allowed), and the
// removal of expired keys from the index: Redis expires the entry keys themselves, this keeps
// the index from growing with keys that are gone. Bounded per call; every write calls it.
const COMMON = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function prune_expired(index, expiries, now, most)
  -- Redis treats a key as expired once the clock is past its expiry time, hence "(".
  local gone = redis.call('ZRANGEBYSCORE', expiries, '-inf', '(' .. now, 'LIMIT', 0, most)
  if #gone > 0 then
    redis.call('ZREM', index, unpack(gone))
    redis.call('ZREM', expiries, unpack(gone))
  end
end
local function check_version(entry, if_version)
  if if_version == '' then return nil end
  local current = tonumber(redis.call('HGET', entry, 'n') or '0')
  if current ~= tonumber(if_version) then return {'conflict', current} end
  return nil
end
`;

const PRUNE_PER_WRITE = 100;

/** KEYS: entry. Reply: {} or {json, version, expiresAt or -1}. */
export const GET_SCRIPT = `
local fields = redis.call('HMGET', KEYS[1], 'v', 'n')
if not fields[1] then return {} end
return {fields[1], tonumber(fields[2]), redis.call('PEXPIRETIME', KEYS[1])}
`;

/** KEYS: entry, index, expiries, version. ARGV: key, json, ttl ms or '', ifVersion or ''. */
export const PUT_SCRIPT = `${COMMON}
local conflict = check_version(KEYS[1], ARGV[4])
if conflict then return conflict end
local now = now_ms()
local version = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'n', version)
redis.call('ZADD', KEYS[2], 0, ARGV[1])
local expires_at = -1
if ARGV[3] ~= '' then
  expires_at = now + tonumber(ARGV[3])
  redis.call('PEXPIREAT', KEYS[1], expires_at)
  redis.call('ZADD', KEYS[3], expires_at, ARGV[1])
else
  redis.call('PERSIST', KEYS[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
end
prune_expired(KEYS[2], KEYS[3], now, ${PRUNE_PER_WRITE})
return {'ok', version, expires_at}
`;

/** KEYS: entry, index, expiries. ARGV: key, ifVersion or ''. */
export const DELETE_SCRIPT = `${COMMON}
local conflict = check_version(KEYS[1], ARGV[2])
if conflict then return conflict end
local deleted = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
prune_expired(KEYS[2], KEYS[3], now_ms(), ${PRUNE_PER_WRITE})
return {'ok', deleted}
`;

// Numbers are doubles, as in JavaScript. The result is written as the shortest of %.15g and
// %.17g that reads back as the same double, so JSON.parse sees exactly what JavaScript would compute.
/** KEYS: entry, index, expiries, version. ARGV: key, by, ttl ms or '' (only for a new entry). */
export const INCREMENT_SCRIPT = `${COMMON}
local now = now_ms()
local current = redis.call('HGET', KEYS[1], 'v')
local value = 0
if current then
  value = tonumber(current)
  if value == nil then return {'not-a-number', string.sub(current, 1, 100)} end
end
local result = value + tonumber(ARGV[2])
if result ~= result or result == math.huge or result == -math.huge then return {'not-finite'} end
local text = string.format('%.15g', result)
if tonumber(text) ~= result then text = string.format('%.17g', result) end
local version = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[1], 'v', text, 'n', version)
if not current then
  redis.call('ZADD', KEYS[2], 0, ARGV[1])
  if ARGV[3] ~= '' then
    local expires_at = now + tonumber(ARGV[3])
    redis.call('PEXPIREAT', KEYS[1], expires_at)
    redis.call('ZADD', KEYS[3], expires_at, ARGV[1])
  else
    -- An expired entry's old expiry may still be listed; left there, pruning would drop the new entry from the index.
    redis.call('ZREM', KEYS[3], ARGV[1])
  end
end
prune_expired(KEYS[2], KEYS[3], now, ${PRUNE_PER_WRITE})
return {'ok', text, version}
`;

/**
 * KEYS: index, expiries. ARGV: entry prefix, range start, key prefix ('' for all), limit, most
 * index members to look at, 'read-only' or ''. Reply: {more (0/1), last key looked at or '',
 * {key, json, version, expiresAt or -1}...}. Index members whose entry is gone are removed on the
 * way, unless 'read-only' (for EVAL_RO, by a reader that may not write): then only skipped.
 */
export const LIST_SCRIPT = `${COMMON}
local limit = tonumber(ARGV[4])
local budget = tonumber(ARGV[5])
local prune = ARGV[6] ~= 'read-only'
local stop = '+'
if ARGV[3] ~= '' then stop = '[' .. ARGV[3] .. '\\255' end
if prune then prune_expired(KEYS[1], KEYS[2], now_ms(), budget) end
local entries = {}
local start = ARGV[2]
local last = ''
local exhausted = false
while #entries < limit and budget > 0 do
  local batch = redis.call('ZRANGEBYLEX', KEYS[1], start, stop, 'LIMIT', 0, math.min(limit - #entries, budget))
  if #batch == 0 then exhausted = true break end
  for _, key in ipairs(batch) do
    local entry = ARGV[1] .. key
    local fields = redis.call('HMGET', entry, 'v', 'n')
    if fields[1] then
      entries[#entries + 1] = {key, fields[1], tonumber(fields[2]), redis.call('PEXPIRETIME', entry)}
    elseif prune then
      redis.call('ZREM', KEYS[1], key)
      redis.call('ZREM', KEYS[2], key)
    end
    last = key
  end
  budget = budget - #batch
  start = '(' .. last
end
local more = 0
if not exhausted and last ~= '' and #redis.call('ZRANGEBYLEX', KEYS[1], start, stop, 'LIMIT', 0, 1) > 0 then more = 1 end
return {more, last, entries}
`;

/** KEYS: index, expiries, version. ARGV: entry prefix, batch size. Reply: entries removed; below the batch size when the table is gone. */
export const DELETE_TABLE_BATCH_SCRIPT = `
local batch = tonumber(ARGV[2])
local keys = redis.call('ZRANGE', KEYS[1], 0, batch - 1)
for _, key in ipairs(keys) do redis.call('DEL', ARGV[1] .. key) end
if #keys > 0 then redis.call('ZREM', KEYS[1], unpack(keys)) end
if #keys < batch then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3]) end
return #keys
`;

/** Every script, for checks of what they call (the Redis users' rules in libs/redis-acl). */
export const STATE_SCRIPTS = [GET_SCRIPT, PUT_SCRIPT, DELETE_SCRIPT, INCREMENT_SCRIPT, LIST_SCRIPT, DELETE_TABLE_BATCH_SCRIPT];
