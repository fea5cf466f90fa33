/** Factory of the `authentik_ecs` processor. */
import { resolve } from 'node:path';
import type { AsnResponse, CityResponse, Reader } from 'maxmind';
import type { ProcessorFactory } from '../../runtime/component.ts';
import { ConfigError } from '../../runtime/errors.ts';
import { configSchema, createDefaultConfig } from './config.ts';
import type { Config } from './config.ts';
import { GeoIp, openDatabase } from './geoip.ts';
import { AuthentikEcsProcessor } from './processor.ts';
import { UserAgentParser } from './useragent.ts';

export const factory: ProcessorFactory<Config> = {
  kind: 'processor',
  type: 'authentik_ecs',
  description:
    "Maps authentik events, users and groups to the ECS documents of Elastic's authentik integration (GeoIP, user agent, document id)",
  configSchema,
  createDefaultConfig,
  create(settings, config, next) {
    const problems: { path: string; message: string }[] = [];
    const base = `processors.${settings.id}`;
    const open = <T extends CityResponse | AsnResponse>(
      file: string | undefined,
      what: 'city' | 'asn',
    ): Reader<T> | undefined => {
      if (file === undefined) return undefined;
      try {
        return openDatabase<T>(resolve(settings.configDir, file), what);
      } catch (e) {
        problems.push({ path: `${base}.geoip.${what}_database`, message: (e as Error).message });
        return undefined;
      }
    };
    const city = open<CityResponse>(config.geoip.city_database, 'city');
    const asn = open<AsnResponse>(config.geoip.asn_database, 'asn');
    if (problems.length > 0) throw new ConfigError(problems);
    let ua: UserAgentParser;
    try {
      ua = new UserAgentParser(config.user_agent.cache_size);
    } catch (e) {
      throw new ConfigError([
        { path: `${base}.user_agent`, message: `cannot load uap-core patterns: ${(e as Error).message}` },
      ]);
    }
    const geo = city || asn ? new GeoIp(city, asn) : undefined;
    return new AuthentikEcsProcessor(
      settings,
      {
        namespace: config.namespace,
        tags: config.tags,
        geo,
        ua,
        categorizeAll: config.categorize_all_actions,
      },
      next,
    );
  },
};
