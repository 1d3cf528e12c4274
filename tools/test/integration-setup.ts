import { jest } from '@jest/globals';

// Integration tests start real servers and wait for real controllers.
jest.setTimeout(60_000);
