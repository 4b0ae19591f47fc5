pragma solidity ^0.5.0;

// The answer comes from a randomness oracle callback that only the coordinator may call.
contract GuessTheNumber {
    address public coordinator;
    mapping(address => uint8) public pendingGuess;
    address payable public player;

    constructor(address oracle) public payable {
        require(msg.value == 1 ether);
        coordinator = oracle;
    }

    function guess(uint8 n) public payable {
        require(msg.value == 1 ether);
        require(player == address(0));
        player = msg.sender;
        pendingGuess[msg.sender] = n;
    }

    function fulfillRandomness(uint256 randomness) external {
        require(msg.sender == coordinator);
        uint8 answer = uint8(randomness % 256);
        address payable p = player;
        player = address(0);
        if (pendingGuess[p] == answer) {
            p.transfer(2 ether);
        }
    }
}
