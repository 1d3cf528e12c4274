// The platform's Redis users: what each service may read, write, publish and call, in one place.
export {
  ACL_RULES, BUILD_QUEUE_KEYS, DEFAULT_USER_LINE, REDIS_USERS, SERVICE_USERS, STATE_KEYS, aclLines, chartAclRulesFile, redisUrlFor, serviceAclRules,
  type AccessRule, type RedisUser, type ServiceUser,
} from './acl-rules.ts';
export * from './watcher-users.ts';
