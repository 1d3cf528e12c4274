import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import express, { type Express } from 'express';
import type { Registry } from 'prom-client';
import { BUILD_API_PATH, createBuildApi } from './build-api.ts';

export const BOARD_PATH = '/builds';

export interface AdminAppOptions {
  /** Whether the board may retry and remove single jobs, and the build API retry failed ones; everything else they could change stays refused. */
  boardActions: boolean;
}

/**
 * The builder's admin surface: /healthz, /metrics (the registry), the build records as JSON
 * under /api/builds (for `kublambda builds`) and the build board (bull-board) under /builds/. The board is read-only unless boardActions; even then only retrying and removing
 * one job are let through: adding jobs, pausing, cleaning or emptying the queue stay with
 * api-controller, which owns the jobs' lifecycle.
 */
export function createAdminApp(queue: Queue, registry: Registry, options: AdminAppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_request, response) => {
    response.json({ status: 'ok' });
  });
  app.get('/metrics', async (_request, response, next) => {
    try {
      const text = await registry.metrics();
      response.type(registry.contentType).send(text);
    } catch (error) {
      next(error);
    }
  });

  app.use(BUILD_API_PATH, createBuildApi(queue, { retries: options.boardActions }));

  const board = new ExpressAdapter();
  board.setBasePath(BOARD_PATH);
  createBullBoard({
    queues: [new BullMQAdapter(queue, { readOnlyMode: !options.boardActions })],
    // @bull-board/express 9.10.1 pins @bull-board/api 9.10.1, whose types are a copy of these; at run time
    // the adapter uses nothing of it.
    serverAdapter: board as unknown as Parameters<typeof createBullBoard>[0]['serverAdapter'],
    options: { uiConfig: { boardTitle: 'Kublambda builds' } },
  });
  app.use(`${BOARD_PATH}/api`, (request, response, next) => {
    if (request.method === 'GET' || request.method === 'HEAD' || isAllowedBoardAction(request.method, request.path)) return next();
    response.status(405).json({ error: 'the build board only retries and removes single jobs', code: 405 });
  });
  app.use(BOARD_PATH, board.getRouter());
  return app;
}

/** PUT /queues/<queue>/<job id>/retry and /clean (remove one job); the path is relative to the board's /api. */
export function isAllowedBoardAction(method: string, path: string): boolean {
  return method === 'PUT' && /^\/queues\/[^/]+\/[^/]+\/(retry|clean)$/.test(path);
}
