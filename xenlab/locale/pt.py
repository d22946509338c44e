"""The exercises in Portuguese: the replies (MESSAGES) and each exercise's texts (EXERCISES),
laid out as ``xenlab/locale/es.py`` describes. What is missing stays English.

Real Xen: (none: teaching material)
"""

from __future__ import annotations

from typing import Any

MESSAGES: dict[str, str] = {
    "exercise": "Exercício {ex_id}: ",
    "answer_choice": "Responda com a letra de uma opção, entre aspas, ou com o seu texto.",
    "not_answered": "Ainda sem resposta: substitua o ... pela sua resposta ({format}) e "
                    "execute a célula de novo.",
    "hint": " Dica: {hint}",
    "correct": "Correto: {shown}{note}.",
    "not_quite": "Quase: {note}.",
    "not_quite_custom": "Quase: {note}",
    "not_it": "Quase: {shown}{note} não é a resposta.",
    "your_answer": "sua resposta",
    "check_failed": "a própria verificação falhou ({error})",
    "format_number": "um número, decimal ou hexadecimal com 0x",
    "format_name": "um nome, entre aspas",
    "format_state": "letras de State, entre aspas, como o xl list as mostra",
    "format_order": "as letras em ordem, entre aspas",
    "format_choice": "a letra de uma opção, entre aspas",
    "format_custom": "o que o exercício pede",
    "read_string": " (você deu uma string; ela foi lida como o número {value}: um número "
                   "simples, sem aspas, também funciona)",
    "truth_value": "{given} é um valor lógico, não um número",
    "not_whole": "{given} não é um número inteiro",
    "not_number_try": "{given} não é um número (tente 8192 ou 0x2000)",
    "not_number": "{given} não é um número",
    "not_name": "{given} não é um nome: responda com uma string entre aspas",
    "not_state_type": '{given} não é um estado (State): responda com uma letra entre aspas, '
                      'como "r"',
    "xl_list_form": " (a forma do xl list de {letters})",
    "no_letter": "nenhuma letra",
    "not_state": "{given} não é um estado (State): as letras são r b p s c d, como no --p--- "
                 "do xl list",
    "not_order_type": '{given} não é uma ordem: responda com letras em uma string, como '
                      '"b a c"',
    "not_order_letters": "{given} não é uma ordem: use apenas as letras",
    "not_option_type": '{given} não é uma opção: responda com uma letra entre aspas, como '
                       '"a"',
    "not_option": "{given} não é nenhuma das opções: responda com uma letra (de a até "
                  "{last}) ou com o texto de uma opção",
    "missing_seabios": "O hvmloader real do Xen e o SeaBIOS não estão instalados aqui (apt "
                       "install xen-utils-4.17 seabios; em outras versões, o xen-utils-4.x do seu"
                       " Xen); o firmware didático acima mostra os mesmos passos.",
    "missing_pvh-grub": "O GRUB PVH não está instalado aqui (apt install grub-xen-host); o "
                        "capítulo continua sem ele.",
    "missing_pv-grub": "O GRUB PV não está instalado aqui (apt install grub-xen-host); o capítulo"
                       " continua sem ele.",
    # ---------------------------------------------------------------- xenlab.handson
    # Os veredictos dos exercícios práticos (ver xenlab/i18n.py).
    "hx_correct": "Correto: ",
    "hx_not_yet": "Ainda não: ",
    "hx_not_answered": "Ainda sem resposta: ",
    "hx_assembler_refused": "o montador recusou o seu código: {error}",
    "hx_attempt_failed": "a tentativa falhou com {error}",
    "hx_need_str": "{what} deve ser uma string (texto entre aspas), não {type}",
    "hx_the_code": "o código",
    "hx_the_config": "a configuração",
    "hx_create_failed": "o xl create falhou: {error}",
    "hx_xl_refused": "o xl create a recusou: {error}",
    "hx_crashed": "caiu",
    "hx_guest_crashed": "o convidado caiu: {crash}.",
    "hx_no_exits": "nenhuma",
    "hx_no_leaves": "nenhuma",
    "hx_no_domains": "nenhum",
    "hx_nothing": "nada",
    "hx_refused": "recusado",
    "hx_it_made": "; ele fez {names}",
    "hx_screen_crashed": " O convidado caiu: {crash}. A CPU passou da sua última instrução e "
                         "seguiu para os seus dados ou para os zeros depois deles? Termine com "
                         "cli; hlt antes de qualquer dado.",
    "hx_screen_empty_ports": "a tela ficou vazia: o seu código escreveu na(s) porta(s) {ports}, "
                             "mas nunca pediu ao BIOS que imprimisse. int $0x10 com AH = 0x0E "
                             "imprime o caractere em AL (teletipo).",
    "hx_screen_empty": "a tela ficou vazia: imprima cada caractere com int $0x10, AH = 0x0E, AL = "
                       "o caractere.",
    "hx_screen_shows": "a tela mostra {shown}, não {expect}.",
    "hx_boot_hint": "escreva código de 16 bits que imprima o texto na tela com int $0x10 (AH = "
                    "0x0E, AL = o caractere) e depois pare com cli; hlt.",
    "hx_boot_too_big": "o seu código montado ocupa {size} bytes; um setor de inicialização "
                       "comporta 510 antes da sua assinatura 55AA",
    "hx_boot_no_halt": " (ele não parou: termine com cli; hlt)",
    "hx_boot_right": "o BIOS carregou o seu setor de inicialização de {size} bytes em 0000:7C00 e "
                     "a tela mostra {expect}, com {exits} saídas de VM a partir do seu "
                     "código{tail}.",
    "hx_cpuid_hint": "execute cpuid com EAX = 0x40000000; o Xen responde com a sua assinatura em "
                     "EBX, ECX, EDX (4 caracteres cada, o byte mais baixo primeiro). Imprima "
                     "esses 12 caracteres com int $0x10 (AH = 0x0E) e depois cli; hlt.",
    "hx_cpuid_typed": "a tela mostra a assinatura, mas o seu código nunca consultou a folha "
                      "0x40000000 do CPUID: imprima o que o Xen responde, não uma string que você "
                      "digitou.",
    "hx_cpuid_right": "a folha 0x40000000 do CPUID foi uma saída de VM que o próprio Xen "
                      "respondeu, e o seu setor de inicialização imprimiu {signature}: este "
                      "convidado sabe que executa sobre o Xen, a primeira coisa que os drivers PV "
                      "de um convidado HVM verificam.",
    "hx_cpuid_never_asked": "o seu código nunca consultou a folha 0x40000000 do CPUID (folhas "
                            "consultadas: {asked}). {screen}",
    "hx_cpuid_asked": "você consultou a folha 0x40000000; {screen} Imprima EBX, depois ECX, "
                      "depois EDX, o byte mais baixo primeiro (shr $8 entre os bytes).",
    "hx_exits_hint": "escreva a sua previsão (um número inteiro) antes de executar o código e "
                     "depois execute a célula: a execução conta cada saída de VM do código depois "
                     "que o BIOS salta para ele.",
    "hx_exits_not_whole": "a previsão deve ser um número inteiro, não {given}",
    "hx_exits_who": "{xen} tratadas pelo Xen, {dm} pelo modelo de dispositivos",
    "hx_exits_crashed": "o código caiu antes de terminar ({crash}); corrija-o primeiro. Saídas "
                        "até agora: {summary}.",
    "hx_exits_right": "{n} saídas de VM ({who}): {summary}.",
    "hx_more": "mais",
    "hx_fewer": "menos",
    "hx_exits_wrong": "você previu {guess}; a execução mediu {n} ({off}): {summary}; {who}. Quais "
                      "das suas instruções saem do convidado?",
    "hx_idle_hint": "depois que o temporizador é armado, o convidado não tem nada a fazer até o "
                    "evento do temporizador: devolva a CPU ao Xen com uma hiperchamada sched_op "
                    "(EDI = o comando, ESI = o seu argumento, depois HYPERCALL "
                    "__HYPERVISOR_sched_op). Qual comando SCHEDOP_ espera por um evento?",
    "hx_idle_hlt": " hlt é uma instrução privilegiada: um kernel PV executa no anel 3 e o Xen "
                   "responde com #GP, então o convidado cai. Em vez disso, peça ao Xen.",
    "hx_idle_yields": " Ele chamou sched_op(SCHEDOP_yield) {count} vezes: yield mantém a vCPU "
                      "executável, então ela volta na hora.",
    "hx_idle_spins": " Ele não fez nenhuma chamada sched_op: fica girando em um laço.",
    "hx_idle_running": "depois de {run_ms} ms o convidado ainda estava no seu código e tinha "
                       "usado a CPU o tempo todo ({cpu_ms} ms).{how} Em vez disso, bloqueie a "
                       "vCPU até chegar um evento e deixe o evento do temporizador encerrar a "
                       "espera.",
    "hx_idle_stopped": "o convidado parou dentro do seu código (ele nunca chegou à linha "
                       "seguinte): não o desligue, apenas espere.",
    "hx_idle_at_once": "o seu código retornou na hora, sem esperar pelo temporizador de "
                       "{deadline_ms} ms ({cpu_ms} ms de CPU, nenhum SCHEDOP_block): o convidado "
                       "nunca devolveu a CPU.",
    "hx_idle_right": "sched_op({command}) bloqueou a vCPU até VIRQ_TIMER disparar em "
                     "{deadline_ms} ms; ele usou {cpu_us} us de CPU no total. É assim que um "
                     "kernel PV fica ocioso.",
    "hx_console_hint": "chame HYPERVISOR_console_io(CONSOLEIO_write, count, buffer): EDI = "
                       "CONSOLEIO_write, ESI = msg_len, RDX = o endereço de msg (lea msg(%rip), "
                       "%rdx), depois HYPERCALL __HYPERVISOR_console_io.",
    "hx_console_bad_expect": "o texto esperado deve ter de 1 a 60 caracteres imprimíveis, sem "
                             "aspas nem barras invertidas",
    "hx_console_right": "o console do Xen mostra {line}: a sua hiperchamada console_io (número "
                        "18) passou pela página de hiperchamadas.",
    "hx_console_none": "o seu código não fez nenhuma hiperchamada console_io (número 18){made}: "
                       "HYPERCALL __HYPERVISOR_console_io.",
    "hx_console_returned": "console_io retornou {ret} ({args}): verifique EDI (o comando), ESI (a "
                           "contagem) e RDX (o endereço do buffer).",
    "hx_console_count": "console_io escreveu {count} bytes; msg tem {size} bytes com a sua quebra "
                        "de linha (msg_len), e o Xen só imprime uma linha quando vê a quebra de "
                        "linha: ESI é a contagem.",
    "hx_console_shows": "console_io executou, mas o console do Xen mostra {shown}, não {expect}: "
                        "ESI é o número de bytes (msg_len); RDX, onde eles estão (msg).",
    "hx_pte_hint": "peça ao Xen que reescreva a entrada L1 de scratch: um mmu_update cuja "
                   "requisição (uma struct mmu_update {fields} em mmu_req) indique o endereço de "
                   "máquina da entrada (RSI) e a nova entrada (construída a partir do quadro de "
                   "other, RCX).",
    "hx_pte_right": "o Xen validou a sua entrada (ptr {ptr}, val {val}: um quadro do domínio, não "
                    "uma tabela de páginas) e a escreveu: scratch agora lê a página de other. É "
                    "assim que um kernel PV altera as suas tabelas de páginas.",
    "hx_pte_not_present": "o Xen escreveu a sua entrada {val}, mas o bit PRESENT (1) dela está "
                          "zerado: scratch não está mais mapeada, e lê-la causou uma falta de "
                          "página ({crash}).",
    "hx_pte_none": "o seu código não fez nenhuma hiperchamada mmu_update (número 1){made}: "
                   "HYPERCALL __HYPERVISOR_mmu_update.",
    "hx_pte_check_args": " Verifique os quatro argumentos: RDI = &mmu_req, RSI = 1, RDX = 0, R10 "
                         "= DOMID_SELF.",
    "hx_pte_virtual_ptr": " ptr deve ser o endereço de máquina da entrada L1 (RSI quando o seu "
                          "código começa), não um endereço virtual.",
    "hx_pte_not_owned": " val deve indicar o quadro de máquina de other: RCX << 12, mais os bits "
                        "de flag.",
    "hx_pte_page_table": " Esse quadro é uma tabela de páginas: o Xen nunca deixa um convidado "
                         "mapeá-la com permissão de escrita.",
    "hx_pte_reserved_bits": " Em val só podem estar ligados os bits de flag baixos e o número do "
                            "quadro.",
    "hx_pte_returned": "mmu_update retornou {ret} ({why}).{hint}",
    "hx_pte_unchanged": "mmu_update teve sucesso, mas scratch ainda mostra a sua própria página: "
                        "val deve mapear o quadro de other (RCX << 12) com PRESENT (1), e ptr "
                        "deve ser a entrada L1 de scratch (RSI).",
    "hx_config_hint": "corrija a configuração um erro de cada vez: execute a célula, leia o que o "
                      "xl diz e mude essa linha.",
    "hx_config_other_name": "o xl criou {got}, não um domínio chamado {name}: a linha name decide "
                            "o que o xl list mostra.",
    "hx_config_hvm": 'o xl construiu um convidado HVM (type = "hvm"): ele inicializa um firmware '
                     "a partir de um disco e ignora kernel. pv-hello é um kernel PV.",
    "hx_config_gone": "o convidado executou e se desligou, e o xl list não o mostra mais: "
                      "on_poweroff decide o que acontece então (destroy, restart, preserve).",
    "hx_config_no_greeting": "o convidado nunca imprimiu a sua saudação no console: o kernel dele "
                             "é o de pv-hello?",
    "hx_config_right": "{name} inicializou, imprimiu {line}, se desligou e continua listado no "
                       "estado {state}.",
    "hx_credit_hint": "escreva a configuração de heavy: uma cópia da de light com o seu próprio "
                      "nome e um peso.",
    "hx_credit_no_heavy": "não há nenhum domínio chamado 'heavy': defina name = \"heavy\".",
    "hx_credit_crashed": "heavy caiu: {crash} (o kernel dele é o de pv-spin?)",
    "hx_credit_measured": "heavy (peso {weight}) recebeu {share} % da CPU, light (peso "
                          "{light_weight}) {light_share} %",
    "hx_credit_right": "{measured} nos primeiros 70 ms.",
    "hx_credit_wrong": "{measured}; o objetivo é {goal} %. O escalonador credit divide a CPU em "
                       "proporção aos pesos: dê a heavy um peso maior que o de light.",
    "hx_fe_hint": "escreva uma função answer(fe) que conceda fe.ring_pfn ao backend, aloque um "
                  "canal de eventos para ele e escreva ring-ref, event-channel e, por fim, state "
                  "= 3 (Initialised).",
    "hx_fe_not_whole": "{call}: {what} deve ser um número inteiro, não {given}",
    "hx_fe_not_a_page": "grant_access: o pfn {pfn} não é uma página deste convidado",
    "hx_fe_alloc_failed": "alloc_unbound({domid}) falhou: {error}",
    "hx_fe_bad_key": "write: a chave é um nome de nó como 'ring-ref', não {given}",
    "hx_fe_log_grant": "concessão ref {ref}: d{domid} pode usar o pfn {pfn}{read_only}",
    "hx_fe_read_only": " somente para leitura",
    "hx_fe_log_port": "porta de canal de eventos {port} para d{domid}",
    "hx_fe_not_function": "a resposta é uma função answer(fe), não {type}",
    "hx_fe_raised": "o seu passo lançou {error}",
    "hx_fe_right": "o blkback mapeou a sua concessão, vinculou a sua porta e foi para 4 "
                   "(Connected). Você fez: {did}.",
    "hx_fe_read_only_refused": " O blkback mapeia o anel para leitura e escrita: uma concessão "
                               "somente para leitura é recusada.",
    "hx_fe_wrong_domain": " A concessão deve indicar o domínio que a mapeia: o do backend "
                          "(fe.backend_id), não o próprio convidado.",
    "hx_fe_bad_ref": " ring-ref deve ser a ref que grant_access retornou.",
    "hx_fe_state_last": " O blkback lê ring-ref e event-channel assim que vê o estado 3: "
                        "escreva-os primeiro, e o estado por último.",
    "hx_fe_port_domain": " A porta deve ser alocada para o domínio do backend (alloc_unbound(0)).",
    "hx_fe_gave_up": "o blkback desistiu com o erro {error} e foi para o estado {state}.{hint} "
                     "Você fez: {did}.",
    "hx_fe_waiting": "o blkback ainda está no estado {state} (InitWait): ele age quando o nó "
                     "state do frontend diz 3 (Initialised). Você fez: {did}.",
    "hx_session_hint": 'uma lista de linhas de comando do xl como ["list"], executadas em ordem: '
                       "um comando para cada objetivo ainda não cumprido.",
    "hx_session_not_a_list": "a resposta é uma lista de linhas de comando do xl (strings), como "
                             '["pause web"]',
    "hx_session_failed": "`xl {command}` falhou: {error}",
    "hx_goal_running": "em execução",
    "hx_goal_paused": "pausado",
    "hx_gone": "não existe mais",
    "hx_session_still_listed": "{name} ainda está listado (estado {state}); o objetivo é que ele "
                               "não exista mais.",
    "hx_session_gone": "{name} não existe mais; o objetivo é que ele esteja {goal}: um domínio "
                       "destruído não pode voltar (o xl create construiria um novo).",
    "hx_session_not_paused": "{name} mostra State {state}: não está pausado (p).",
    "hx_session_still_paused": "{name} mostra State {state}: ainda está pausado.",
    "hx_session_right": "o xl list agora mostra {summary}.",
}

EXERCISES: dict[str, dict[str, Any]] = {
    # ------------------------------------------------------------ 00 · Comece aqui
    "0.1": {
        "question": "Quantas páginas de 4 KiB o convidado pv-hello, de 32 MiB, possui?",
        "hint": "32 MiB = 32 * 1024 KiB; uma página tem 4 KiB.",
        "explanation": "o xl list mostra 32 (MiB); o Xen conta a memória do convidado em "
                       "páginas (tot_pages).",
    },
    # ------------------------------------------------------------ 01 · Por que virtualizar?
    "1.1": {
        "question": "Uma empresa tem {n} servidores físicos, cada um deles ocupado, em média, "
                    "{util} % do tempo. De quantos hospedeiros ela precisa se carregar cada "
                    "hospedeiro até {target} %? (semente {seed})",
        "hint": "trabalho total = servidores x carga; divida pelo que um hospedeiro pode "
                "suportar; arredonde para cima.",
    },
    "1.2": {
        "question": "Em quantos MiB o free_memory do xl info diminuiu quando os quatro "
                    "convidados de 64 MiB foram criados?",
        "hint": "olhe o free_memory antes e depois de criá-los.",
    },
    "1.3": {
        "question": "pv-crash executou uma instrução proibida. O que aconteceu com os outros "
                    "convidados?",
        "options": ["eles também caíram",
                    "ficaram pausados até pv-crash ser destruído",
                    "nada: continuaram executando; só pv-crash caiu"],
        "hint": "olhe o xl list depois que pv-crash morreu.",
        "option_hints": {"a": "olhe o xl list depois da falha: quais convidados ainda "
                              "executam?",
                         "b": "ninguém os pausou: compare a coluna State deles antes e "
                              "depois da falha."},
        "explanation": "o Xen isola os domínios: uma falha é entregue somente ao domínio que "
                       "a causou, ou mata somente ele.",
    },
    # ------------------------------------------------------------ 02 · O hipervisor
    "2.1": {
        "question": "O domínio A tem peso {a} e o domínio B tem peso {b}; ambos executam um "
                    "laço ativo em uma só CPU. Que fatia da CPU A recebe, em porcentagem "
                    "(arredondada)? (semente {seed})",
        "hint": "a fatia é proporcional ao peso: A / (A + B).",
    },
    "2.2": {
        "question": "O Dom0 tem 256 MiB. Quantos quadros de 4 KiB a tabela de quadros do Xen "
                    "lista como pertencentes ao domínio 0?",
        "hint": "256 MiB = 256 * 1024 KiB; um quadro tem 4 KiB.",
    },
    "2.3": {
        "question": "Onde executam os drivers de disco e de rede de um hospedeiro Xen?",
        "options": ["no hipervisor", "no Dom0", "no próprio hardware de cada DomU"],
        "hint": "em qual domínio executavam os backends dos drivers divididos?",
        "option_hints": {"a": "leia de novo o log de inicialização do Xen: ele configura a "
                              "memória e as CPUs, e não sonda nenhum disco.",
                         "c": "um DomU recebe apenas dispositivos virtuais; quem é o dono "
                              "dos reais?"},
        "explanation": "o Xen não tem drivers de dispositivos; o kernel do Dom0 controla o "
                       "hardware.",
    },
    # ------------------------------------------------------------ 03 · Dom0 e os DomUs
    "3.1": {
        "question": "O domínio 2 tenta xenstore-write /local/domain/1/data/x hi. Com qual "
                    "erro o xenstored responde (o nome, como ENOENT)?",
        "hint": "as permissões do nó são (n1,r0): quem mais pode escrever? Experimente com "
                "store.write(path, value, domid=2).",
    },
    "3.2": {
        "question": "Qual letra a coluna State do xl list mostra para um domínio criado com "
                    "xl create -p?",
        "hint": "olhe o primeiro xl list deste notebook.",
    },
    "3.3": {
        "question": 'A configuração de um convidado tem on_poweroff = "destroy". Ele se '
                    "desliga sozinho. O que o xl list mostra para ele?",
        "options": ["estado s (desligado)", "estado p (pausado)",
                    "nada: ele não está mais lá"],
        "hint": "execute o convidado e olhe o xl list; o log do xl diz o que ele fez.",
        "option_hints": {"a": 'isso é o que on_poweroff = "preserve" deixa para trás.',
                         "b": "p é um domínio criado com -p, ou pausado por xl pause."},
        "explanation": "o toolstack no Dom0 destrói o domínio quando ele se desliga.",
    },
    # ------------------------------------------------------------ 04 · Paravirtualização
    "4.1": {
        "question": "Em qual deslocamento, em bytes, da página de hiperchamadas fica o stub "
                    "de {name}? (semente {seed})",
        "hint": "cada stub tem 32 bytes; o stub da hiperchamada número nr fica em 32 * nr "
                "(os números estão em Hypercall).",
    },
    "4.2": {
        "question": "Quantas hiperchamadas pv-spin fez em toda a sua execução (o hospedeiro "
                    "solo acima)?",
        "hint": "some as contagens de hypercall_counts(solo.trace) para o domid de pv-spin.",
    },
    "4.3": {
        "question": "Um kernel PV não tem nada a fazer até o seu próximo temporizador. O que "
                    "ele faz?",
        "options": ["executa hlt", "chama sched_op(SCHEDOP_block)",
                    "gira em um laço ativo"],
        "hint": "qual destas é permitida a um kernel que não está no anel 0?",
        "option_hints": {"a": "hlt é privilegiada: lembre-se do que aconteceu com pv-crash.",
                         "c": "girar em laço queima tempo de CPU que outro domínio poderia "
                              "usar."},
        "explanation": "hlt é privilegiada (pv-crash morreu por causa dela); girar em laço "
                       "desperdiça a CPU.",
    },
    # ------------------------------------------------------------ 05 · Drivers divididos
    "5.1": {
        "question": "O blkback do Dom0 escreveu o setor 100 em nome de um convidado. De qual "
                    "domid veio a requisição?",
        "hint": 'o rastro mostra: lab.trace.select(kind="io"), registro '
                "blkback.disk_write, campo dom; ou: qual convidado tem um disco?",
    },
    "5.2": {
        "question": "Qual é o número do XenbusState {state}? (semente {seed})",
        "hint": "leia o handshake impresso acima: cada estado é escrito no xenstore como o "
                "seu número.",
    },
    "5.3": {
        "question": "pv-net-a envia um ping para pv-net-b. Que caminho o quadro percorre?",
        "options": ["direto da memória de pv-net-a para a de pv-net-b",
                    "netfront -> netback no Dom0 -> ponte xenbr0 -> netback -> netfront",
                    "pelo próprio driver de rede do Xen"],
        "hint": "siga o rastro do ping: qual domínio trata cada quadro?",
        "option_hints": {"a": "convidados não compartilham memória a menos que um conceda "
                              "uma página: de quem eram as concessões que o rastro mostrou?",
                         "c": "o Xen não tem driver de rede: qual domínio tem a ponte?"},
        "explanation": "os convidados não compartilham nada diretamente; os backends e a "
                       "ponte do Dom0 o transportam.",
    },
    # ------------------------------------------------------------ 06 · Virtualização completa
    "6.1": {
        "question": 'Quem tratou os acessos do convidado à porta {port}: "xen" (emulado '
                    'dentro do hipervisor) ou "dm" (uma ioreq ao modelo de dispositivos)? '
                    "(semente {seed})",
        "hint": "o rastro diz: os registros vmexit da porta {port} "
                '(hvm.trace.select(kind="vmexit", name="io")) nomeiam o seu tratador.',
        "explanation": "o próprio Xen emula o PIT, os PICs, o RTC e a porta 0xE9; as portas "
                       "do disco, da serial e da VGA vão para o modelo de dispositivos.",
    },
    "6.2": {
        "question": "Quantas hiperchamadas o convidado HVM hvm-hello fez, no total?",
        "hint": "conte os registros de hiperchamada do domid do convidado HVM, ou as saídas "
                "vmcall.",
        "explanation": "o hvmloader pede a versão do Xen uma vez pela página de "
                       "hiperchamadas; o BIOS e o setor de inicialização nunca chamam o Xen.",
    },
    "6.3": {
        "question": "O que permitiu ao Xen 3 executar kernels convidados não modificados?",
        "options": ["um tradutor binário mais rápido no Dom0",
                    "extensões do processador (Intel VT-x, AMD-V) que interceptam instruções "
                    "sensíveis",
                    "uma nova ABI de hiperchamadas",
                    "executar o kernel convidado no anel 3"],
        "option_hints": {"a": "o Xen nunca traduziu código do convidado; quem provocou as "
                              "saídas de VM que você contou?",
                         "c": "um kernel não modificado não faz nenhuma hiperchamada.",
                         "d": "era assim que os kernels PV executavam, e por isso eles "
                              "tinham de ser modificados."},
        "hint": "as saídas que você contou são feitas pelo processador.",
    },
    # ------------------------------------------------------------ 07 · A inicialização HVM
    "7.1": {
        "question": "Coloque as etapas do firmware na ordem em que o convidado as executa: "
                    'responda com as letras em ordem, por exemplo answer = "a b c ...". '
                    "(semente {seed})",
        "options": {"HVM Loader": "HVM Loader",
                    "hypercall page": "página de hiperchamadas (hypercall page)",
                    "E820 table": "tabela E820",
                    "POST": "POST",
                    "IVT and BDA": "IVT e BDA",
                    "INT 19h boot": "inicialização por INT 19h",
                    "boot sector prints": "o setor de inicialização imprime"},
        "hint": "o rastro acima está em ordem: primeiro o hvmloader, depois o BIOS.",
    },
    "7.2": {
        "question": 'Quem atende as leituras do convidado na porta de dados IDE 0x1F0: "xen" '
                    'ou "dm"?',
        "hint": "o controlador IDE é emulado no hipervisor? Os registros vmexit nomeiam o "
                "tratador.",
    },
    "7.2b": {
        "question": "O BIOS lê um setor com um único `rep insw`: uma saída de VM, uma ioreq. "
                    "Se ele lesse o mesmo setor de 512 bytes com um laço de instruções `inw` "
                    "avulsas, quantas ioreqs a porta de dados 0x1F0 receberia?",
        "hint": "cada in ou out avulso que sai do convidado é a sua própria saída de VM e a "
                "sua própria ioreq; quantas palavras de 16 bits há em 512 bytes?",
        "explanation": "uma ioreq por inw: a instrução de string poupa 255 idas e voltas ao "
                       "modelo de dispositivos.",
    },
    # ------------------------------------------------------------ 08 · O que mudou
    "8.1": {
        "question": "Qual é o id de fabricante PCI (vendor id) do dispositivo de plataforma "
                    "do Xen (um número; hexadecimal como 0x1234 serve)?",
        "hint": "leia o deslocamento 0 do espaço de configuração do dispositivo de "
                "plataforma, ou olhe a tabela PCI acima.",
        "explanation": "0x5853 é o id de fabricante PCI da XenSource.",
    },
    "8.2": {
        "question": "O que a hiperchamada removida tmem_op retornou para pv-pubhdr?",
        "hint": "leia o console de pv-pubhdr; ENOSYS é 38 e os erros voltam negativos.",
    },
    "8.3": {
        "question": "Qual tipo de convidado não tem BIOS nem modelo de dispositivos, e usa "
                    "VT-x/AMD-V?",
        "options": ["PV", "HVM", "PVH", "PVHVM"],
        "hint": "qual tipo inicializa o seu kernel diretamente e ainda assim executa no "
                "contêiner de hardware?",
        "option_hints": {"a": "PV inicializa o seu kernel diretamente, mas sem o contêiner "
                              "de hardware (sem VT-x).",
                         "b": "HVM inicializa pelo hvmloader e por um BIOS, com um modelo de "
                              "dispositivos.",
                         "d": "PVHVM é um convidado HVM com drivers PV: ele ainda tem BIOS e "
                              "modelo de dispositivos."},
    },
    # ------------------------------------------------------------ 09 · O gerenciador
    "9.1": {
        "question": "Qual comando xl o botão Pause executa?",
        "options": ["xl shutdown <domid>", "xl pause <domid>", "xl destroy <domid>",
                    "xl save <domid>"],
        "option_hints": {"a": "shutdown pede ao convidado que pare sozinho; ele não volta "
                              "com Unpause.",
                         "c": "destroy encerra o domínio de vez.",
                         "d": "save grava a memória do convidado em um arquivo e o "
                              "encerra."},
        "hint": "olhe o log do xl acima.",
    },
    "9.2": {
        "question": "Crie pv-spin de novo e pause-o. Qual letra a coluna State mostra?",
        "hint": "r executando (running), b bloqueado (blocked), p pausado (paused), "
                "s desligado (shut down); a tabela do painel mostra.",
    },
    # ------------------------------------------------------------ 10 · Glossário
    "10.1": {
        "question": "Qual termo esta definição descreve? (semente {seed})\n  {meaning}",
        "option_hint": "{term} é: {definition}",
        "hint": "procure na tabela acima.",
    },
    "10.2": {
        "question": "Qual destes executa no Dom0, e não no Xen nem no convidado?",
        "options": ["o escalonador credit", "o modelo de dispositivos", "hvmloader",
                    "blkfront"],
        "hint": "o Xen não tem drivers de dispositivos; o que emula o PC de um convidado "
                "HVM?",
        "option_hints": {"a": "o escalonador faz parte do próprio Xen.",
                         "c": "o hvmloader executa dentro do convidado HVM, como o seu "
                              "primeiro firmware.",
                         "d": "blkfront é a metade do convidado no driver dividido."},
    },
    # ------------------------------------------------------------ 11 · Linux em um DomU
    "11.1": {
        "question": "O Linux do Debian fez dezenas de milhares de hiperchamadas mmu_update "
                    "para inicializar. Por que um kernel PV pede ao Xen que escreva as "
                    "entradas da sua tabela de páginas?",
        "options": ["é mais rápido do que escrever as entradas ele mesmo",
                    "o Xen mantém as tabelas de páginas do convidado somente leitura para ele "
                    "e verifica cada entrada: um quadro que o convidado não possui, ou um "
                    "mapeamento gravável de uma das suas próprias tabelas de páginas, "
                    "permitiria que ele alcançasse memória que não é sua",
                    "o Linux não tem código para escrever tabelas de páginas"],
        "hint": "pense no que check_l1e recusou acima, e por quê.",
        "option_hints": {"a": "uma hiperchamada por entrada é mais lenta do que uma escrita "
                              "na memória: o Xen paga esse custo pela segurança, não pela "
                              "velocidade.",
                         "c": "o mesmo kernel escreve as suas tabelas de páginas "
                              "diretamente no hardware real (native_set_pte)."},
        "explanation": "a MMU PV é o coração do kernel modificado: o Xen valida cada entrada "
                       "(mod_l1_entry) para que o convidado mapeie somente os seus próprios "
                       "quadros.",
    },
}
