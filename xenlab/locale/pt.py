"""The exercises in Portuguese: the replies (MESSAGES) and each exercise's texts (EXERCISES).

MESSAGES has the keys of ``xenlab.i18n.MESSAGES`` (same {placeholders}). EXERCISES maps
an exercise's number to its "question", "hint", "explanation", "options" (a list in the
English order, or for shuffled options a dict from each English option to its
translation) and "option_hints" (by letter); a seeded question's {placeholders} are the
names in its ``params`` (xenlab/exercises.py). What is missing stays English.

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
