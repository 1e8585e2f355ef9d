import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { jsonServiceDefinition, startTestGrpcServer, withGrpcServer } from '../src/grpc.js';

const definition = jsonServiceDefinition('test.fixture.v1.Echo', { Echo: 'unary', Count: 'serverStream' });
const EchoClient = grpc.makeGenericClientConstructor(definition, 'Echo');

const implementation: grpc.UntypedServiceImplementation = {
  Echo: (call: grpc.ServerUnaryCall<{ text: string }, { text: string }>, callback: grpc.sendUnaryData<{ text: string }>) => {
    callback(null, { text: call.request.text.toUpperCase() });
  },
  Count: (call: grpc.ServerWritableStream<{ to: number }, { n: number }>) => {
    for (let n = 1; n <= call.request.to; n++) call.write({ n });
    call.end();
  },
};

function echo(client: grpc.Client, text: string): Promise<{ text: string }> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      definition.Echo!.path,
      definition.Echo!.requestSerialize,
      definition.Echo!.responseDeserialize,
      { text },
      { deadline: Date.now() + 2000 },
      (err, value) => (err ? reject(err) : resolve(value as { text: string })),
    );
  });
}

describe('grpc test fixtures', () => {
  it('builds a JSON service definition with the right paths and stream flags', () => {
    const def = jsonServiceDefinition('a.b.v1.S', { U: 'unary', SS: 'serverStream', CS: 'clientStream', B: 'bidi' });
    expect(Object.fromEntries(Object.entries(def).map(([k, m]) => [k, [m.path, m.requestStream, m.responseStream]]))).toEqual({
      U: ['/a.b.v1.S/U', false, false],
      SS: ['/a.b.v1.S/SS', false, true],
      CS: ['/a.b.v1.S/CS', true, false],
      B: ['/a.b.v1.S/B', true, true],
    });
    expect(def.U!.requestDeserialize(def.U!.requestSerialize({ x: [1, 'y'] }))).toEqual({ x: [1, 'y'] });
  });

  it('serves unary and streaming calls on an ephemeral loopback port', async () => {
    await withGrpcServer([{ definition, implementation }], async ({ address, port }) => {
      expect(address).toBe(`127.0.0.1:${port}`);
      expect(port).toBeGreaterThan(0);
      const client = new EchoClient(address, grpc.credentials.createInsecure());
      try {
        expect(await echo(client, 'hi')).toEqual({ text: 'HI' });
        const stream = client.makeServerStreamRequest(
          definition.Count!.path,
          definition.Count!.requestSerialize,
          definition.Count!.responseDeserialize,
          { to: 3 },
        );
        const got: unknown[] = [];
        for await (const msg of stream) got.push(msg);
        expect(got).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
      } finally {
        client.close();
      }
    });
  });

  it('shuts the server down even when the body throws', async () => {
    let address = '';
    await expect(
      withGrpcServer([{ definition, implementation }], (server) => {
        address = server.address;
        return Promise.reject(new Error('body failed'));
      }),
    ).rejects.toThrow('body failed');
    const client = new EchoClient(address, grpc.credentials.createInsecure());
    try {
      await expect(echo(client, 'x')).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    } finally {
      client.close();
    }
  });

  it('allows close to be called twice', async () => {
    const server = await startTestGrpcServer([{ definition, implementation }]);
    await server.close();
    await server.close();
  });
});
